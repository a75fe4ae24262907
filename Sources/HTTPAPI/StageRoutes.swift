import FluentKit
import Foundation
import Hummingbird
import Rooms
import Store

struct StageBody: Codable, APIResponse {
    var layout: String
    var participants: [UUID]
    var streams: [String]?
    var banner: Stage.Banner?
    var logo: String?
    var background: String?

    init(_ stage: Stage) {
        layout = stage.layout
        participants = stage.participants
        streams = stage.streams
        banner = stage.banner
        logo = stage.logo
        background = stage.background
    }

    var stage: Stage { Stage(layout: layout, participants: participants, streams: streams ?? [], banner: banner, logo: logo, background: background) }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(layout, forKey: .layout)
        try container.encode(participants, forKey: .participants)
        try container.encode(streams ?? [], forKey: .streams)
        // Always present: null says "none" rather than "not told".
        try container.encode(banner, forKey: .banner)
        try container.encode(logo, forKey: .logo)
        try container.encode(background, forKey: .background)
    }

    enum CodingKeys: String, CodingKey { case layout, participants, streams, banner, logo, background }
}

extension API {
    /// Checks a proposed stage against the rules, saves it and tells the broadcast's studios:
    /// the stage API and the studio's own controls both come here.
    func arrange(_ proposed: Stage, in broadcast: Broadcast) async throws -> Stage {
        var stage = proposed
        stage.banner = stage.banner.map { Stage.Banner(text: $0.text.trimmingCharacters(in: .whitespacesAndNewlines)) }
        let participants = try await Participant.query(on: store.db).filter(\.$broadcastID == (try broadcast.requireID())).all()
        let roles = Dictionary(try participants.map { (try $0.requireID(), ParticipantRole(rawValue: $0.role) ?? .viewer) }) { first, _ in first }
        do {
            try StageRules.validate(stage, layouts: Set(layouts.layouts.map(\.name)), participants: roles)
        } catch {
            throw APIError(.badRequest, error.code, error.description)
        }
        for id in stage.streams {
            let owned = try await IngestStreamRecord.query(on: store.db).filter(\.$streamID == id).filter(\.$ownerID == broadcast.ownerID).first()
            guard owned != nil else {
                throw APIError(.badRequest, "unknown_stream", "`streams` names ingest streams of the host's (POST /api/streams); \(id) is not one")
            }
        }
        for (field, url) in [("logo", stage.logo), ("background", stage.background)] {
            guard let url else { continue }
            let file = url.hasPrefix("/uploads/") ? String(url.dropFirst("/uploads/".count)) : ""
            guard !file.isEmpty, try await Upload.query(on: store.db).filter(\.$fileName == file).filter(\.$ownerID == broadcast.ownerID).first() != nil else {
                throw APIError(.badRequest, "unknown_upload", "`\(field)` must be the url of one of the host's uploads (POST /api/upload)")
            }
        }
        broadcast.stage = stage
        try await broadcast.save(on: store.db)
        await programs.update(broadcast)
        await announce(RoomEvent.stageUpdated(stage), in: try broadcast.requireID())
        logger.info("stage arranged", metadata: ["broadcast": "\(broadcast.loggedID)", "layout": "\(stage.layout)", "on_stage": "\(stage.participants.count)"])
        return stage
    }

    /// Stage automation: what the host's studio does, for bots and control surfaces
    /// (DESIGN "Interfaces"). The host changes it; an invited guest may read it.
    func addStageRoutes(to router: Router<AppContext>) {
        router.get("api/broadcasts/:id/stage") { _, context in
            StageBody(try await memberBroadcast(context, parameter: "id").currentStage)
        }
        router.put("api/broadcasts/:id/stage") { request, context in
            if case .guest? = context.identity {
                throw APIError(.forbidden, "host_only", "only the host arranges the stage")
            }
            let broadcast = try await ownedBroadcast(context.parameters.get("id"), context: context)
            guard broadcast.status != BroadcastStatus.ended.rawValue else {
                throw APIError(.conflict, "broadcast_ended", "an ended broadcast has no stage to arrange")
            }
            let stage = try await arrange(try await request.decodeJSON(StageBody.self, context: context).stage, in: broadcast)
            return StageBody(stage)
        }
    }
}
