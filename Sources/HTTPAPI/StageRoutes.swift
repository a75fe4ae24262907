import FluentKit
import Foundation
import Hummingbird
import Rooms
import Store

extension StageBody: APIResponse {}

extension API {
    /// Arranges the stage (the stage API and the studio's own controls both come here), in
    /// the API's words when the room manager refuses.
    func arrange(_ proposed: Stage, in broadcast: Broadcast) async throws -> Stage {
        try await rooms.arrange(proposed, in: broadcast)
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
            let body = try await request.decodeJSON(StageBody.self, context: context)
            var proposed = body.stage
            // Without a theme the show keeps its own; with one, it is also the host's next.
            if body.theme == nil { proposed.theme = broadcast.currentStage.theme }
            let stage = try await arrange(proposed, in: broadcast)
            if body.theme != nil { await keepTheme(stage.theme, for: broadcast.ownerID) }
            return StageBody(stage)
        }
    }
}
