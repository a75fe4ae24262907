import FluentKit
import Foundation
import Layout
import Logging
import Registry
import Store

/// Why the room manager refused a change; the REST and signaling adapters word it for
/// their clients.
public enum RoomError: Error, Equatable {
    /// The broadcast cannot take that lifecycle step from where it is.
    case invalidTransition(String)
    /// The host already runs this many live programs.
    case userProgramLimit(Int)
    /// This node already runs this many live programs.
    case nodeAtCapacity(Int)
    /// The program could not start; the log says why.
    case programFailed
    /// The stage breaks a rule (`StageError`'s code and wording).
    case invalidStage(code: String, message: String)
    /// The stage names an ingest stream the host does not own.
    case unknownStream(String)
    /// The stage's logo or background (`field`) is not one of the host's uploads.
    case unknownUpload(field: String)
}

/// Broadcasts' lifecycle and stage, and the program each runs: every change the REST API
/// or a studio asks for comes through here, is saved, runs the program to match, and is
/// announced on the broadcast's room channel.
public struct RoomManager: Sendable {
    public let store: Store
    public let registry: any Registry
    public let layouts: LayoutLibrary
    public let programs: ProgramDirector
    private let logger: Logger

    public init(store: Store, registry: any Registry, layouts: LayoutLibrary, programs: ProgramDirector, logger: Logger) {
        self.store = store
        self.registry = registry
        self.layouts = layouts
        self.programs = programs
        self.logger = logger
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
            } catch ProgramDirector.Refusal.userLimit(let limit) {
                throw RoomError.userProgramLimit(limit)
            } catch ProgramDirector.Refusal.nodeLimit(let limit) {
                throw RoomError.nodeAtCapacity(limit)
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
        for (field, url) in [("logo", stage.logo), ("background", stage.background)] {
            guard let url else { continue }
            let file = url.hasPrefix("/uploads/") ? String(url.dropFirst("/uploads/".count)) : ""
            guard !file.isEmpty, try await Upload.query(on: store.db).filter(\.$fileName == file).filter(\.$ownerID == broadcast.ownerID).first() != nil else {
                throw RoomError.unknownUpload(field: field)
            }
        }
        broadcast.stage = stage
        try await broadcast.save(on: store.db)
        await programs.update(broadcast)
        await announce(RoomEvent.stageUpdated(stage), in: id)
        logger.info("stage arranged", metadata: ["broadcast": "\(id)", "layout": "\(stage.layout)", "on_stage": "\(stage.participants.count)"])
        return stage
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
