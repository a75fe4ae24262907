import Cluster
import FluentKit
import Foundation
import Registry
import SFU
import Store

/// Who comes into a room: the broadcast's owner as its host, or a guest by invite.
public enum RoomMember: Sendable, Equatable {
    case host(userID: UUID)
    case guest(invitedTo: UUID, inviteID: String, invitedName: String?)
}

/// A participant as the studio is told of them.
public struct ParticipantInfo: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var role: String
    public var audioEnabled: Bool
    public var videoEnabled: Bool
    /// In the roster of `joined`: whether their media reached the SFU.
    public var publishing: Bool?
    /// For a screen share: whose screen it is.
    public var screenOf: String?

    enum CodingKeys: String, CodingKey {
        case id, name, role, publishing
        case audioEnabled = "audio_enabled", videoEnabled = "video_enabled", screenOf = "screen_of"
    }

    public init(_ participant: Participant, publishing: Bool? = nil, screenOf: UUID? = nil) throws {
        id = try participant.requireID().uuidString
        name = participant.name
        role = participant.role
        audioEnabled = participant.audioEnabled
        videoEnabled = participant.videoEnabled
        self.publishing = publishing
        self.screenOf = screenOf?.uuidString
    }
}

/// One broadcast's studio: who is in it (presence, with a grace period to resume a dropped
/// place), screen shares, status, chat and mute requests, each announced on the room channel.
/// It keeps nothing in memory: the store holds the participants and the registry their
/// presence and resume tokens, so studios on any node agree.
public struct Room: Sendable {
    public let id: UUID
    let manager: RoomManager

    private var channel: String { id.uuidString }
    private var registry: any Registry { manager.registry }
    private var store: Store { manager.store }

    /// A participant's way back in after a dropped connection: their id and the token
    /// `join` gave them.
    public struct ResumeClaim: Sendable, Equatable {
        public var participantID: String?
        public var token: String?

        public init(participantID: String?, token: String?) {
            self.participantID = participantID
            self.token = token
        }
    }

    /// What a participant who joined is told.
    public struct Joined: Sendable {
        public var participant: Participant
        /// Proves the place on a reconnect within the grace period.
        public var resumeToken: String
        /// Everyone present, the newcomer included, oldest first.
        public var roster: [ParticipantInfo]
        public var broadcast: Broadcast
    }

    /// Brings `member` into the studio: the place `resume` proves, or a new participant
    /// (a guest under `name`, else the invite's name). The studio holds
    /// `StageRules.maxInStudio` people. The others are told of the newcomer by
    /// `announceArrival`, once the newcomer listens to the room's events.
    public func join(as member: RoomMember, name: String?, resume: ResumeClaim?) async throws -> Joined {
        guard let broadcast = try await Broadcast.find(id, on: store.db) else { throw RoomError.broadcastNotFound }
        switch member {
        case .host(let userID):
            guard broadcast.ownerID == userID else { throw RoomError.notOwner }
        case .guest(let invitedTo, _, _):
            guard invitedTo == id else { throw RoomError.notInvited }
        }
        guard broadcast.status != BroadcastStatus.ended.rawValue else { throw RoomError.broadcastEnded }
        let participant: Participant
        if let resume {
            participant = try await resumed(resume)
        } else {
            participant = try await newParticipant(member, name: name)
        }
        let participantID = try participant.requireID().uuidString
        let present = try await registry.present(room: channel)
        guard present.count < StageRules.maxInStudio || present.contains(participantID) else {
            throw RoomError.studioFull(StageRules.maxInStudio, what: "people")
        }
        try await registry.markPresent(room: channel, participant: participantID, ttl: manager.resumeGrace)
        let resumeToken = Self.resumeToken()
        try await registry.storeResumeToken(participant: participantID, token: resumeToken, ttl: .seconds(24 * 3600))
        let presentNow = Set(present + [participantID])
        // Publishing here, or on another node of the deployment (played here through a relay).
        let publishing = await manager.sfu.publishingParticipants(broadcastID: channel)
            .union(await PublisherLocations.publishing(in: registry, broadcastID: channel, among: Array(presentNow)).map(ParticipantID.init))
        let roster = try await Participant.query(on: store.db).filter(\.$broadcastID == id).sort(\.$createdAt).all()
            .filter { $0.id.map { presentNow.contains($0.uuidString) } ?? false }
            .map { try ParticipantInfo($0, publishing: publishing.contains(ParticipantID(try $0.requireID()))) }
        return Joined(participant: participant, resumeToken: resumeToken, roster: roster, broadcast: broadcast)
    }

    /// Tells the studio a participant joined.
    public func announceArrival(of participant: Participant) async throws {
        await manager.announce(RoomEvent.participantJoined(try ParticipantInfo(participant)), in: id)
    }

    private func resumed(_ claim: ResumeClaim) async throws -> Participant {
        guard let id = claim.participantID.flatMap(UUID.init(uuidString:)), let token = claim.token,
              let expected = try await registry.resumeToken(participant: id.uuidString), expected == token,
              let participant = try await Participant.find(id, on: store.db), participant.broadcastID == self.id else {
            throw RoomError.resumeRefused
        }
        return participant
    }

    private func newParticipant(_ member: RoomMember, name: String?) async throws -> Participant {
        let participant: Participant
        switch member {
        case .host(let userID):
            let name = try await User.find(userID, on: store.db)?.name ?? "Host"
            participant = Participant(broadcastID: id, userID: userID, name: name, role: .host)
        case .guest(_, let inviteID, let invitedName):
            let given = name?.trimmingCharacters(in: .whitespacesAndNewlines)
            participant = Participant(broadcastID: id, userID: nil, name: (given?.isEmpty == false ? given : nil) ?? invitedName ?? "Guest",
                                      role: .guest, inviteID: inviteID)
        }
        try await manager.admit(participant)
        return participant
    }

    /// Keeps a participant present for another grace period; a studio calls it while its
    /// socket is open, so a dropped one frees its place only once the period is over.
    public func keepPresent(_ participantID: UUID) async {
        try? await registry.markPresent(room: channel, participant: participantID.uuidString, ttl: manager.resumeGrace)
    }

    /// The room channel's events, as published (JSON text), on whichever node.
    public func events() async throws -> AsyncStream<String> {
        try await registry.roomEvents(room: channel)
    }

    /// The broadcast, if `participant` is its host.
    public func asHost(_ participant: Participant) async throws -> Broadcast {
        guard participant.role == ParticipantRole.host.rawValue else { throw RoomError.hostOnly }
        guard let broadcast = try await Broadcast.find(id, on: store.db) else { throw RoomError.broadcastNotFound }
        return broadcast
    }

    /// A participant turned their camera or microphone on or off; nil leaves it as it is.
    public func setStatus(of participant: Participant, audio: Bool?, video: Bool?) async throws {
        if let audio { participant.audioEnabled = audio }
        if let video { participant.videoEnabled = video }
        try await participant.save(on: store.db)
        await manager.announce(RoomEvent.participantStatusUpdated(try ParticipantInfo(participant)), in: id)
    }

    /// One chat line, to everyone in the studio on any node.
    public func chat(from participant: Participant, text: String) async throws {
        await manager.announce(RoomEvent.chatMessage(from: try participant.requireID(), name: participant.name, text: text, at: Date()), in: id)
    }

    /// The host asks a participant to mute their audio or video.
    public func requestMute(of target: String, kind: String, from host: Participant) async {
        await manager.announce(RoomEvent.muteRequest(target: target, kind: kind, from: host.name), in: id)
    }

    /// A participant shares a screen: a participant of its own (so it can go on stage),
    /// present like a person and counted against the studio's size.
    public func startScreenShare(of owner: Participant) async throws -> (share: Participant, info: ParticipantInfo) {
        let present = try await registry.present(room: channel)
        guard present.count < StageRules.maxInStudio else { throw RoomError.studioFull(StageRules.maxInStudio, what: "sources") }
        let share = Participant(broadcastID: id, userID: owner.userID, name: "\(owner.name) (screen)",
                                role: ParticipantRole(rawValue: owner.role) ?? .guest, inviteID: owner.inviteID)
        try await manager.admit(share)
        let shareID = try share.requireID()
        try await registry.markPresent(room: channel, participant: shareID.uuidString, ttl: manager.resumeGrace)
        let info = try ParticipantInfo(share, screenOf: try owner.requireID())
        await manager.announce(RoomEvent.participantJoined(info), in: id)
        return (share, info)
    }

    /// A participant goes: at once (they left, or stopped sharing), or after the grace
    /// period if they have not come back by then, on whichever node.
    public func depart(_ participant: Participant, now: Bool) async {
        guard let participantID = participant.id else { return }
        if now {
            try? await registry.markAbsent(room: channel, participant: participantID.uuidString)
            await leave(participantID)
            return
        }
        let room = self
        await manager.departures.schedule(participantID.uuidString, after: manager.resumeGrace + .milliseconds(500)) {
            let present = (try? await room.registry.present(room: room.channel)) ?? []
            if !present.contains(participantID.uuidString) { await room.leave(participantID) }
        }
    }

    /// Off the stage, their media stopped, everyone told.
    private func leave(_ participantID: UUID) async {
        if let broadcast = try? await Broadcast.find(id, on: store.db), broadcast.currentStage.participants.contains(participantID) {
            var stage = broadcast.currentStage
            stage.participants.removeAll { $0 == participantID }
            _ = try? await manager.arrange(stage, in: broadcast)
        }
        _ = await manager.sfu.unpublish(participantID: ParticipantID(participantID))
        await manager.announce(RoomEvent.participantLeft(participantID), in: id)
    }

    private static func resumeToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(generator.next() as UInt64, radix: 36) }.joined()
    }
}
