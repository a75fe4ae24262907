import Cluster
import Crypto
import Foundation
import Ingest
import Layout
import Logging
import MediaPlane
import NIOCore
import NIOPosix
import Registry
import Rooms
import RTCP
import SDP
import SFU
import Store
import StudioFiles
import Testing

/// A room on a real SQLite store and the in-process registry. The SFU runs over a transport
/// that opens nothing: these tests are about who is in the room, not media.
private struct RoomFixture {
    let store: Store
    let registry: InProcessRegistry
    let manager: RoomManager
    let host: User
    let broadcast: Broadcast
    let directory: URL

    static func make(resumeGrace: Duration = .seconds(5)) async throws -> RoomFixture {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-room-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var logger = Logger(label: "room-test")
        logger.logLevel = .critical
        let store = try Store(location: .sqlite(path: directory.appendingPathComponent("tally.sqlite").path),
                              sealer: StreamKeySealer(secret: MasterSecret(keyMaterial: SymmetricKey(size: .bits256))),
                              eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
        try await store.migrate()
        let registry = InProcessRegistry()
        let layouts = try LayoutLibrary(files: StudioFiles.files(under: "layouts/").map { ($0.path, $0.contents) }, from: "the built-in layouts")
        let sfu = SFU(transport: InertTransport(), logger: logger)
        let ingest = IngestHub(hlsRoot: directory, logger: logger, authorize: { _ in .deny("no ingest in this test") })
        let settings = ProgramDirector.Settings(maxLivePrograms: 1, maxLiveProgramsPerUser: 1, recordingsDirectory: directory, recordingMinFreeBytes: 0,
                                                maxRecordingBytes: 1 << 20, hlsDirectory: directory, uploadsDirectory: directory, outbound: .init())
        let programs = ProgramDirector(configuration: settings, layouts: layouts, store: store, registry: registry,
                                       homes: HomeLeases(registry: registry, store: store, node: "test-node"), sfu: sfu, ingest: ingest, logger: logger)
        let manager = RoomManager(store: store, registry: registry, layouts: layouts, programs: programs, sfu: sfu, resumeGrace: resumeGrace, logger: logger)
        let host = User(email: "host@example.com", passwordHash: "-", name: "Hana")
        try await host.create(on: store.db)
        let broadcast = Broadcast(ownerID: try host.requireID(), title: "Show", description: "", settings: BroadcastSettings(), scheduledAt: nil)
        try await broadcast.create(on: store.db)
        return RoomFixture(store: store, registry: registry, manager: manager, host: host, broadcast: broadcast, directory: directory)
    }

    var room: Room { manager.room(broadcast.id!) }
    var hostMember: RoomMember { .host(userID: host.id!) }

    func guest(_ invite: String = "invite-1", name: String? = nil) -> RoomMember {
        .guest(invitedTo: broadcast.id!, inviteID: invite, invitedName: name)
    }

    func close() async {
        await manager.stop()
        await store.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }
}

@Suite("Room: who is in a broadcast's studio")
struct RoomTests {
    private func refusal(_ body: () async throws -> Void) async -> RoomError? {
        do {
            try await body()
            return nil
        } catch {
            return error as? RoomError
        }
    }

    @Test("the host and a guest join; the roster shows both, with the guest's chosen name")
    func joins() async throws {
        let fixture = try await RoomFixture.make()
        let host = try await fixture.room.join(as: fixture.hostMember, name: nil, resume: nil)
        #expect(host.participant.name == "Hana" && host.participant.role == ParticipantRole.host.rawValue)
        let guest = try await fixture.room.join(as: fixture.guest(name: "From invite"), name: "  Gus ", resume: nil)
        #expect(guest.participant.name == "Gus" && guest.participant.role == ParticipantRole.guest.rawValue)
        #expect(guest.roster.map(\.name) == ["Hana", "Gus"])
        #expect(guest.roster.allSatisfy { $0.publishing == false })
        let unnamed = try await fixture.room.join(as: fixture.guest("invite-2", name: "Invited"), name: nil, resume: nil)
        #expect(unnamed.participant.name == "Invited")
        await fixture.close()
    }

    @Test("only the owner joins as host, an invite only its broadcast, and nobody an ended one")
    func refusals() async throws {
        let fixture = try await RoomFixture.make()
        #expect(await refusal { _ = try await fixture.room.join(as: .host(userID: UUID()), name: nil, resume: nil) } == .notOwner)
        #expect(await refusal { _ = try await fixture.room.join(as: .guest(invitedTo: UUID(), inviteID: "x", invitedName: nil), name: nil, resume: nil) } == .notInvited)
        #expect(await refusal { _ = try await fixture.manager.room(UUID()).join(as: fixture.hostMember, name: nil, resume: nil) } == .broadcastNotFound)
        fixture.broadcast.status = BroadcastStatus.ended.rawValue
        try await fixture.broadcast.save(on: fixture.store.db)
        #expect(await refusal { _ = try await fixture.room.join(as: fixture.hostMember, name: nil, resume: nil) } == .broadcastEnded)
        await fixture.close()
    }

    @Test("a dropped participant resumes its place with its token, and not with a wrong one")
    func resume() async throws {
        let fixture = try await RoomFixture.make()
        let first = try await fixture.room.join(as: fixture.guest(), name: "Gus", resume: nil)
        let id = try first.participant.requireID().uuidString
        let again = try await fixture.room.join(as: fixture.guest(), name: nil, resume: .init(participantID: id, token: first.resumeToken))
        #expect(again.participant.id == first.participant.id && again.resumeToken != first.resumeToken)
        // The token was replaced by the second join's.
        #expect(await refusal { _ = try await fixture.room.join(as: fixture.guest(), name: nil, resume: .init(participantID: id, token: first.resumeToken)) }
                == .resumeRefused)
        #expect(await refusal { _ = try await fixture.room.join(as: fixture.guest(), name: nil, resume: .init(participantID: nil, token: nil)) } == .resumeRefused)
        await fixture.close()
    }

    @Test("the studio holds ten people; a screen share counts as one")
    func full() async throws {
        // Presence outlives the test however slowly a busy machine runs its joins.
        let fixture = try await RoomFixture.make(resumeGrace: .seconds(120))
        let host = try await fixture.room.join(as: fixture.hostMember, name: nil, resume: nil)
        for index in 1..<StageRules.maxInStudio - 1 {
            _ = try await fixture.room.join(as: fixture.guest("invite-\(index)"), name: nil, resume: nil)
        }
        let (share, info) = try await fixture.room.startScreenShare(of: host.participant)
        #expect(info.screenOf == host.participant.id?.uuidString && share.name == "Hana (screen)")
        #expect(await refusal { _ = try await fixture.room.join(as: fixture.guest("one-more"), name: nil, resume: nil) }
                == .studioFull(StageRules.maxInStudio, what: "people"))
        #expect(await refusal { _ = try await fixture.room.startScreenShare(of: host.participant) } == .studioFull(StageRules.maxInStudio, what: "sources"))
        await fixture.close()
    }

    @Test("leaving takes a participant off the stage and tells the room; a dropped one goes after the grace period")
    func departures() async throws {
        let fixture = try await RoomFixture.make(resumeGrace: .milliseconds(300))
        let events = try await fixture.room.events()
        var received = events.makeAsyncIterator()
        let guest = try await fixture.room.join(as: fixture.guest(), name: "Gus", resume: nil)
        try await fixture.room.announceArrival(of: guest.participant)
        #expect(await received.next()?.contains(#""event":"participant-joined""#) == true)
        let guestID = try guest.participant.requireID()
        _ = try await fixture.manager.arrange(Stage(layout: "grid", participants: [guestID]), in: fixture.broadcast)
        #expect(await received.next()?.contains(#""event":"stage-updated""#) == true)

        await fixture.room.depart(guest.participant, now: false)
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await Broadcast.find(fixture.broadcast.id, on: fixture.store.db)?.currentStage.participants == [guestID])
        // Gone once the grace period (and its margin) is over without a return.
        #expect(await received.next()?.contains(#""event":"stage-updated""#) == true)
        #expect(await received.next() == #"{"data":{"participant_id":"\#(guestID.uuidString)"},"event":"participant-left"}"#)
        #expect(try await Broadcast.find(fixture.broadcast.id, on: fixture.store.db)?.currentStage.participants == [])
        #expect(try await fixture.registry.present(room: fixture.broadcast.id!.uuidString).isEmpty)
        await fixture.close()
    }

    @Test("only the host passes asHost, which go-live, mute and stage controls ask; status and chat reach the room")
    func hostOnly() async throws {
        let fixture = try await RoomFixture.make()
        let events = try await fixture.room.events()
        var received = events.makeAsyncIterator()
        let guest = try await fixture.room.join(as: fixture.guest(), name: "Gus", resume: nil)
        #expect(await refusal { _ = try await fixture.room.asHost(guest.participant) } == .hostOnly)
        let host = try await fixture.room.join(as: fixture.hostMember, name: nil, resume: nil)
        #expect(try await fixture.room.asHost(host.participant).id == fixture.broadcast.id)
        try await fixture.room.setStatus(of: guest.participant, audio: false, video: nil)
        let status = await received.next() ?? ""
        #expect(status.contains(#""audio_enabled":false"#) && status.contains(#""video_enabled":true"#))
        try await fixture.room.chat(from: guest.participant, text: "hello")
        #expect(await received.next()?.contains(#""name":"Gus","participant_id":"\#(guest.participant.id!.uuidString)","sent_at":"#) == true)
        await fixture.close()
    }
}

/// A transport with no sockets: opening a session is refused, everything else does nothing.
private final class InertTransport: MediaTransport {
    let loop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()
    var now: Duration { .zero }
    let protectionOverhead = 16
    let maxMediaSections = 16
    let allowsLossInjection = false

    func open(tag: String, owner: SessionOwner, negotiate: @escaping @Sendable (LocalTransportParameters) throws -> SDPAnswer,
              makeSink: @escaping @Sendable (SDPAnswer) -> any MediaSink) async throws -> (id: SessionID, answer: SDPAnswer) {
        throw MediaTransportError.tooManySessionsForOwner(limit: 0)
    }

    func close(sessionID: SessionID, tag: String?, identity: String?, reason: String) async -> Bool { false }
    func close(tag: String, reason: String) async -> Int { 0 }
    func close(identity: String, reason: String) async -> Int { 0 }
    func sessionCount(tag: String) async -> Int { 0 }
    func setEgressLoss(sessionID: SessionID, probability: Double) async -> Bool { false }
    func sendRTP(_ packet: ByteBuffer, on session: any MediaSession) {}
    func sendRTCP(_ packets: [RTCPPacket], on session: any MediaSession) {}
    func fanOut(count: Int, _ body: (any MediaLane, Range<Int>) -> Void) -> Int { 0 }
    func flushOutgoing() {}
}
