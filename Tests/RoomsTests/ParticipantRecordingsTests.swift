import Crypto
import FluentKit
import Foundation
import Logging
import NIOPosix
@testable import Rooms
import Store
import Testing

/// A store with a host, a live broadcast with its recording row, and the host's participant.
private struct TrackFixture {
    let store: Store
    let recordings: ParticipantRecordings
    let broadcast: Broadcast
    let participant: Participant
    let recording: Recording
    let directory: URL

    static func make(maxBytes: Int64 = 64 << 20, maxTakes: Int = 20, recording status: String = "recording") async throws -> TrackFixture {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-tracks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var logger = Logger(label: "tracks-test")
        logger.logLevel = .critical
        let store = try Store(location: .sqlite(path: directory.appendingPathComponent("tally.sqlite").path),
                              sealer: StreamKeySealer(secret: MasterSecret(keyMaterial: SymmetricKey(size: .bits256))),
                              eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
        try await store.migrate()
        let host = User(email: "host@example.com", passwordHash: "-", name: "Hana")
        try await host.create(on: store.db)
        let broadcast = Broadcast(ownerID: try host.requireID(), title: "Show", description: "", settings: BroadcastSettings(), scheduledAt: nil)
        try await broadcast.create(on: store.db)
        let recording = Recording(broadcastID: broadcast.id, ownerID: try host.requireID(), title: "Show", fileName: "show.mp4")
        recording.status = status
        try await recording.create(on: store.db)
        let participant = Participant(broadcastID: try broadcast.requireID(), userID: host.id, name: "Hana", role: .host)
        try await participant.create(on: store.db)
        let recordings = ParticipantRecordings(store: store, settings: .init(directory: directory, maxBytes: maxBytes, minFreeBytes: 0, maxTakes: maxTakes),
                                               logger: logger)
        return TrackFixture(store: store, recordings: recordings, broadcast: broadcast, participant: participant, recording: recording, directory: directory)
    }

    func start(holder: String = "user:host") async throws -> ParticipantTrack {
        try await recordings.startLocal(broadcastID: broadcast.id!, participant: participant, holder: holder)
    }

    func close() async {
        await store.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }
}

@Suite("Participant recordings: takes uploaded in pieces that name their offset")
struct ParticipantRecordingsTests {
    private func failure(_ body: () async throws -> Void) async -> ParticipantRecordings.Failure? {
        do {
            try await body()
            return nil
        } catch {
            return error as? ParticipantRecordings.Failure
        }
    }

    @Test("pieces go on from what the server has: a repeat is taken as sent, a gap is refused with the offset to send from")
    func offsets() async throws {
        let fixture = try await TrackFixture.make()
        defer { Task { await fixture.close() } }
        let track = try await fixture.start()
        let id = try track.requireID()
        #expect(track.take == 1 && track.status == "uploading" && track.source == "local")
        #expect(try await fixture.recordings.append(id, holder: "user:host", offset: 0, bytes: Array(repeating: 1, count: 100)) == 100)
        // The answer was lost and the page sends the same piece again.
        #expect(try await fixture.recordings.append(id, holder: "user:host", offset: 0, bytes: Array(repeating: 1, count: 100)) == 100)
        #expect(await failure { _ = try await fixture.recordings.append(id, holder: "user:host", offset: 150, bytes: [2]) } == .offsetMismatch(received: 100))
        #expect(try await fixture.recordings.append(id, holder: "user:host", offset: 100, bytes: [2, 3]) == 102)
        #expect(try await fixture.recordings.track(id, holder: "user:host").receivedBytes == 102)
        // Another credential can neither read nor add to it.
        #expect(await failure { _ = try await fixture.recordings.append(id, holder: "invite:other", offset: 102, bytes: [4]) } == .notHolder)
        #expect(await failure { _ = try await fixture.recordings.track(id, holder: "invite:other") } == .notHolder)
        #expect(await failure { _ = try await fixture.recordings.track(UUID(), holder: "user:host") } == .notFound)
        // The listing counts what came so far.
        #expect(try await fixture.recordings.tracks(recordingID: fixture.recording.id!).map(\.sizeBytes) == [102])

        // A request for a take whose bytes are on another node is told so, not read as empty.
        let upload = await fixture.recordings.file(of: track).path + ".upload"
        try FileManager.default.moveItem(atPath: upload, toPath: upload + ".elsewhere")
        #expect(await failure { _ = try await fixture.recordings.track(id, holder: "user:host") } == .onAnotherNode)
        #expect(await failure { _ = try await fixture.recordings.append(id, holder: "user:host", offset: 102, bytes: [4]) } == .onAnotherNode)
        #expect(await failure { _ = try await fixture.recordings.complete(id, holder: "user:host") } == .onAnotherNode)
        try FileManager.default.moveItem(atPath: upload + ".elsewhere", toPath: upload)
        #expect(try await fixture.recordings.append(id, holder: "user:host", offset: 102, bytes: [4]) == 103)
    }

    @Test("a take needs a recorded show, the participant's own broadcast, room under the caps")
    func limits() async throws {
        let fixture = try await TrackFixture.make(maxBytes: 1000, maxTakes: 2)
        defer { Task { await fixture.close() } }
        #expect(await failure { _ = try await fixture.recordings.startLocal(broadcastID: UUID(), participant: fixture.participant, holder: "user:host") }
            == .notParticipant)
        let first = try await fixture.start()
        _ = try await fixture.start()
        #expect(await failure { _ = try await fixture.start() } == .tooManyTakes(2))
        #expect(await failure { _ = try await fixture.recordings.append(first.id!, holder: "user:host", offset: 0, bytes: Array(repeating: 0, count: 1001)) }
            == .tooLarge(1000))

        let unrecorded = try await TrackFixture.make(recording: "ready")
        defer { Task { await unrecorded.close() } }
        #expect(await failure { _ = try await unrecorded.start() } == .notRecording)
    }

    @Test("a complete take is remuxed into a WebM with its size and length; bytes that are no recording fail and are kept")
    func completes() async throws {
        let fixture = try await TrackFixture.make()
        defer { Task { await fixture.close() } }
        let source = fixture.directory.appendingPathComponent("browser.webm").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        process.arguments = ["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi",
                             "-i", "sine=frequency=440:sample_rate=48000", "-t", "3", "-c:v", "libvpx", "-c:a", "libopus",
                             "-f", "webm", "-live", "1", source]
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: source)))
        let track = try await fixture.start()
        var offset: Int64 = 0
        for piece in stride(from: 0, to: bytes.count, by: 10_000).map({ Array(bytes[$0..<min($0 + 10_000, bytes.count)]) }) {
            offset = try await fixture.recordings.append(track.id!, holder: "user:host", offset: offset, bytes: piece)
        }
        let done = try await fixture.recordings.complete(track.id!, holder: "user:host")
        #expect(done.status == "ready" && done.width == 320 && done.height == 240)
        #expect(abs(done.durationSeconds - 3) < 0.2, "\(done.durationSeconds)")
        #expect(FileManager.default.fileExists(atPath: await fixture.recordings.file(of: done).path))
        #expect(await failure { _ = try await fixture.recordings.append(track.id!, holder: "user:host", offset: offset, bytes: [1]) } == .finished)

        let junk = try await fixture.start()
        _ = try await fixture.recordings.append(junk.id!, holder: "user:host", offset: 0, bytes: Array("not a recording".utf8))
        let failed = try await fixture.recordings.complete(junk.id!, holder: "user:host")
        #expect(failed.status == "failed" && failed.error?.contains("not a playable recording") == true && failed.sizeBytes == 15)
        #expect(FileManager.default.fileExists(atPath: await fixture.recordings.file(of: failed).path))
        try await fixture.recordings.removeFiles(recordingID: fixture.recording.id!)
        #expect(!FileManager.default.fileExists(atPath: await fixture.recordings.file(of: done).path))
    }
}
