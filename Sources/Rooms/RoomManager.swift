import FluentKit
import Foundation
import Layout
import Logging
import Registry
import SFU
import Store

/// Why the room manager refused a change, with the code and wording clients see; the REST
/// and signaling adapters choose only the status.
public enum RoomError: Error, Equatable {
    /// The broadcast cannot take that lifecycle step from where it is.
    case invalidTransition(String)
    /// The host already runs this many live programs.
    case userProgramLimit(Int)
    /// This node already runs this many live programs.
    case nodeAtCapacity(Int)
    /// Another node is the broadcast's home (its program runs there).
    case programElsewhere(node: String)
    /// This node is shutting down and starts no program.
    case nodeDraining
    /// One more program would take this node past its CPU budget (all in cores).
    case cpuBudgetSpent(cost: Double, current: Double, budget: Double)
    /// Every node of the deployment refused the program (limits, CPU budgets, shutting down).
    case clusterAtCapacity(nodes: Int)
    /// The one other node that could take the program refused it, saying why.
    case refusedByNode(code: String, message: String)
    /// The program could not start; the log says why.
    case programFailed
    /// The stage breaks a rule (`StageError`'s code and wording).
    case invalidStage(code: String, message: String)
    /// The stage names an ingest stream the host does not own.
    case unknownStream(String)
    /// The stage's logo or background (`field`) is not one of the host's uploads.
    case unknownUpload(field: String)
    /// A clip on the proposed stage is not in the host's library.
    case unknownClip(UUID)
    case broadcastNotFound
    /// Only the broadcast's owner joins as its host.
    case notOwner
    /// The invite is for another broadcast.
    case notInvited
    case broadcastEnded
    /// The place a client asked to resume is not one it can prove it held.
    case resumeRefused
    /// The studio already holds this many people (or sources, with screen shares).
    case studioFull(Int, what: String)
    /// The broadcast has had this many participants over its life.
    case tooManyParticipants(Int)
    /// The invite has let in this many participants.
    case inviteExhausted(Int)
    case hostOnly

    public var code: String {
        switch self {
        case .invalidTransition: "invalid_transition"
        case .userProgramLimit: "too_many_live_programs"
        case .nodeAtCapacity: "server_at_capacity"
        case .programElsewhere: "program_on_another_node"
        case .nodeDraining: "node_draining"
        case .cpuBudgetSpent: "server_at_capacity"
        case .clusterAtCapacity: "server_at_capacity"
        case .refusedByNode(let code, _): code
        case .programFailed: "program_failed"
        case .invalidStage(let code, _): code
        case .unknownStream: "unknown_stream"
        case .unknownUpload: "unknown_upload"
        case .unknownClip: "unknown_clip"
        case .broadcastNotFound: "broadcast_not_found"
        case .notOwner: "not_owner"
        case .notInvited: "not_invited"
        case .broadcastEnded: "broadcast_ended"
        case .resumeRefused: "resume_refused"
        case .studioFull: "studio_full"
        case .tooManyParticipants: "too_many_participants"
        case .inviteExhausted: "invite_exhausted"
        case .hostOnly: "host_only"
        }
    }

    public var message: String {
        switch self {
        case .invalidTransition(let message): message
        case .userProgramLimit(let limit):
            "you already have \(limit) live broadcast\(limit == 1 ? "" : "s"); end one before going live with another"
        case .nodeAtCapacity(let limit): "this server is running its limit of \(limit) live programs; try again when one ends"
        case .programElsewhere: "another node runs this broadcast's program"
        case .nodeDraining: "this server is shutting down; try again, another server will take the show"
        case .cpuBudgetSpent(let cost, let current, let budget):
            "this server's CPU budget is spent: a program costs \(Self.cores(cost)) here, it uses \(Self.cores(current)) of its \(Self.cores(budget)); try again when one ends"
        case .clusterAtCapacity(let nodes):
            "all \(nodes) servers of this deployment are at their program limit or CPU budget; try again when a show ends"
        case .refusedByNode(_, let message): message
        case .programFailed: "the program could not start; the server log says why"
        case .invalidStage(_, let message): message
        case .unknownStream(let stream): "`streams` names ingest streams of the host's (POST /api/streams); \(stream) is not one"
        case .unknownUpload(let field): "`\(field)` must be the url of one of the host's uploads (POST /api/upload)"
        case .unknownClip(let clip): "`clips` names videos in the host's library (POST /api/clips); \(clip) is not one"
        case .broadcastNotFound: "no such broadcast"
        case .notOwner: "only the broadcast's owner joins as its host"
        case .notInvited: "this invite is for another broadcast"
        case .broadcastEnded: "this broadcast has ended"
        case .resumeRefused: "that place cannot be resumed; join afresh"
        case .studioFull(let limit, let what): "the studio holds \(limit) \(what) at most"
        case .tooManyParticipants(let limit): "this broadcast has had \(limit) participants; start a new broadcast"
        case .inviteExhausted(let limit): "this invite link has let in \(limit) participants; ask the host for a new one"
        case .hostOnly: "only the host can do that"
        }
    }

    /// A program's refusal, as the API tells it.
    public init(_ refusal: ProgramDirector.Refusal) {
        self = switch refusal {
        case .userLimit(let limit): .userProgramLimit(limit)
        case .nodeLimit(let limit): .nodeAtCapacity(limit)
        case .elsewhere(let node): .programElsewhere(node: node)
        case .draining: .nodeDraining
        case .cpuBudget(let cost, let current, let budget): .cpuBudgetSpent(cost: cost, current: current, budget: budget)
        case .clusterFull(let nodes): .clusterAtCapacity(nodes: nodes)
        case .remote(let code, let message): .refusedByNode(code: code, message: message)
        }
    }

    private static func cores(_ value: Double) -> String {
        "\((value * 100).rounded() / 100) cores"
    }
}

/// Broadcasts' lifecycle and stage, and the program each runs: every change the REST API
/// or a studio asks for comes through here, is saved, runs the program to match, and is
/// announced on the broadcast's room channel.
public struct RoomManager: Sendable {
    public let store: Store
    public let registry: any Registry
    public let layouts: LayoutLibrary
    public let programs: ProgramDirector
    let sfu: SFU
    /// Studio participants whose sockets dropped, leaving once their grace period is over.
    let departures = DepartureSchedule()
    /// How long a dropped studio keeps its place (and its media) for a reconnect.
    public let resumeGrace: Duration
    let logger: Logger

    public init(store: Store, registry: any Registry, layouts: LayoutLibrary, programs: ProgramDirector, sfu: SFU, resumeGrace: Duration, logger: Logger) {
        self.store = store
        self.registry = registry
        self.layouts = layouts
        self.programs = programs
        self.sfu = sfu
        self.resumeGrace = resumeGrace
        self.logger = logger
    }

    /// The studio of one broadcast.
    public func room(_ broadcastID: UUID) -> Room {
        Room(id: broadcastID, manager: self)
    }

    /// Cancels the departures still waiting out their grace period; before the store closes.
    public func stop() async {
        await departures.stop()
    }

    /// Saves a new participant once the broadcast and the invite behind it have room: an
    /// invite link brings in at most `StageRules.maxPerInvite` people over a broadcast's
    /// life, and a broadcast gathers at most `StageRules.maxParticipantRecords`, so no
    /// guest can fill the store or get around the studio's size by joining over and over.
    public func admit(_ participant: Participant) async throws {
        let broadcast = participant.broadcastID
        let total = try await Participant.query(on: store.db).filter(\.$broadcastID == broadcast).count()
        guard total < StageRules.maxParticipantRecords else { throw RoomError.tooManyParticipants(StageRules.maxParticipantRecords) }
        if let invite = participant.inviteID {
            let used = try await Participant.query(on: store.db).filter(\.$broadcastID == broadcast).filter(\.$inviteID == invite).count()
            guard used < StageRules.maxPerInvite else { throw RoomError.inviteExhausted(StageRules.maxPerInvite) }
        }
        try await participant.create(on: store.db)
    }

    /// The participant a guest's WHIP publish stands for: the first one its invite brought
    /// in, so publishing again replaces that participant's media instead of adding people.
    public func whipParticipant(broadcast: Broadcast, inviteID: String, name: String?) async throws -> Participant {
        let id = try broadcast.requireID()
        if let existing = try await Participant.query(on: store.db).filter(\.$broadcastID == id).filter(\.$inviteID == inviteID).sort(\.$createdAt).first() {
            return existing
        }
        let participant = Participant(broadcastID: id, userID: nil, name: name ?? "Guest", role: .guest, inviteID: inviteID)
        try await admit(participant)
        return participant
    }

    /// Moves a broadcast through its lifecycle, starts or stops its program, saves it, and
    /// tells its studios (`broadcast-started` / `broadcast-ended`).
    public func apply(_ event: BroadcastLifecycle.Event, to broadcast: Broadcast) async throws {
        do {
            try BroadcastLifecycle.apply(event, to: broadcast, at: Date())
        } catch {
            throw RoomError.invalidTransition(error.message)
        }
        let id = try broadcast.requireID()
        if event == .start {
            do {
                try await programs.start(broadcast)
            } catch let refusal as ProgramDirector.Refusal {
                throw RoomError(refusal)
            } catch {
                logger.error("program did not start", metadata: ["broadcast": "\(id)", "error": "\(error)"])
                await programs.stop(id)
                throw RoomError.programFailed
            }
        } else {
            await programs.stop(id)
        }
        try await broadcast.save(on: store.db)
        logger.info("broadcast \(broadcast.status)", metadata: ["broadcast": "\(id)"])
        await announce(RoomEvent.broadcastStatus(broadcast), in: id)
    }

    /// Checks a proposed stage against the rules and the host's own streams and uploads,
    /// saves it, updates the live program and tells the broadcast's studios.
    public func arrange(_ proposed: Stage, in broadcast: Broadcast) async throws -> Stage {
        var stage = proposed
        stage.banner = stage.banner.map { Stage.Banner(text: $0.text.trimmingCharacters(in: .whitespacesAndNewlines)) }
        try await check(stage, in: broadcast)
        let id = try broadcast.requireID()
        broadcast.stage = stage
        try await broadcast.save(on: store.db)
        await programs.update(broadcast)
        await announce(RoomEvent.stageUpdated(stage), in: id)
        logger.info("stage arranged", metadata: ["broadcast": "\(id)", "layout": "\(stage.layout)", "on_stage": "\(stage.participants.count)"])
        return stage
    }

    /// Whether `stage` may stand in `broadcast`: the rules, and only the host's own streams,
    /// clips and uploads (a saved scene is checked so too).
    public func check(_ stage: Stage, in broadcast: Broadcast) async throws {
        let id = try broadcast.requireID()
        let participants = try await Participant.query(on: store.db).filter(\.$broadcastID == id).all()
        let roles = Dictionary(try participants.map { (try $0.requireID(), ParticipantRole(rawValue: $0.role) ?? .viewer) }) { first, _ in first }
        do {
            try StageRules.validate(stage, layouts: Set(layouts.layouts.map(\.name)), participants: roles)
        } catch {
            throw RoomError.invalidStage(code: error.code, message: error.description)
        }
        for stream in stage.streams {
            let owned = try await IngestStreamRecord.query(on: store.db).filter(\.$streamID == stream).filter(\.$ownerID == broadcast.ownerID).first()
            guard owned != nil else { throw RoomError.unknownStream(stream) }
        }
        for clip in stage.clips {
            guard try await Clip.query(on: store.db).filter(\.$id == clip).filter(\.$ownerID == broadcast.ownerID).first() != nil else {
                throw RoomError.unknownClip(clip)
            }
        }
        for (field, url) in [("logo", stage.logo), ("background", stage.background)] {
            guard let url else { continue }
            let file = url.hasPrefix("/uploads/") ? String(url.dropFirst("/uploads/".count)) : ""
            guard !file.isEmpty, try await Upload.query(on: store.db).filter(\.$fileName == file).filter(\.$ownerID == broadcast.ownerID).first() != nil else {
                throw RoomError.unknownUpload(field: field)
            }
        }
    }

    /// Publishes a room event; the change it describes is already saved, so an unreachable
    /// registry is logged, not thrown.
    public func announce(_ event: String?, in broadcast: UUID) async {
        guard let event else { return }
        do {
            try await registry.publishRoomEvent(room: broadcast.uuidString, event)
        } catch {
            logger.warning("room event not announced", metadata: ["broadcast": "\(broadcast)", "error": "\(error)"])
        }
    }
}
