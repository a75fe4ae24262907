import FluentKit
import Foundation
import Hummingbird
import Rooms
import Store

/// A saved stage arrangement of a broadcast.
struct SceneResponse: APIResponse {
    var id: UUID
    var name: String
    var stage: StageBody
    /// A countdown scene starts a clock of this many seconds under its name when shown.
    var countdownSeconds: Int?
    var createdAt: Date?

    init(_ scene: StageScene) throws {
        id = try scene.requireID()
        name = scene.name
        stage = StageBody(scene.stage)
        countdownSeconds = scene.countdownSeconds
        createdAt = scene.createdAt
    }
}

struct SceneListResponse: APIResponse {
    var scenes: [SceneResponse]
}

struct SaveSceneRequest: Decodable {
    var name: String?
    /// Without it, the stage as it is now.
    var stage: StageBody?
    /// 1 to 3600 makes a countdown scene; 0 makes it a plain one again.
    var countdownSeconds: Int?

    /// The countdown asked for: nil when not asked, .some(nil) for none.
    func countdown() throws -> Int?? {
        guard let seconds = countdownSeconds else { return nil }
        guard seconds == 0 || (1...StageRules.maxCountdownSeconds).contains(seconds) else {
            throw APIError(.badRequest, "invalid_field", "`countdown_seconds` is 1 to \(StageRules.maxCountdownSeconds), or 0 for none")
        }
        return .some(seconds == 0 ? nil : seconds)
    }
}

extension API {
    /// Scenes a broadcast keeps.
    static let maxScenesPerBroadcast = 20

    func addSceneRoutes(to router: Router<AppContext>) {
        let group = router.group("api/broadcasts/:id/scenes")
        group.get("") { _, context -> SceneListResponse in
            let broadcast = try await ownedBroadcast(context.parameters.get("id"), context: context)
            let scenes = try await StageScene.query(on: store.db).filter(\.$broadcast.$id == broadcast.requireID()).sort(\.$createdAt).all()
            return SceneListResponse(scenes: try scenes.map(SceneResponse.init))
        }
        group.post("") { request, context -> EditedResponse<SceneResponse> in
            let broadcast = try await ownedBroadcast(context.parameters.get("id"), context: context)
            let body = try await request.decodeJSON(SaveSceneRequest.self, context: context)
            let name = try Validate.text(body.name ?? "", field: "name", max: 80)
            let id = try broadcast.requireID()
            guard try await StageScene.query(on: store.db).filter(\.$broadcast.$id == id).count() < Self.maxScenesPerBroadcast else {
                throw APIError(.conflict, "too_many_scenes", "a broadcast keeps at most \(Self.maxScenesPerBroadcast) scenes; delete one first")
            }
            let stage = try await checkedScene(body.stage?.stage ?? broadcast.currentStage, in: broadcast)
            let scene = StageScene(broadcastID: id, name: name, stage: stage, countdownSeconds: try body.countdown() ?? nil)
            try await scene.create(on: store.db)
            return try SceneResponse(scene).created()
        }
        group.patch(":scene") { request, context -> SceneResponse in
            let (broadcast, scene) = try await ownedScene(context)
            let body = try await request.decodeJSON(SaveSceneRequest.self, context: context)
            if let name = body.name { scene.name = try Validate.text(name, field: "name", max: 80) }
            if let stage = body.stage { scene.stage = try await checkedScene(stage.stage, in: broadcast) }
            if let countdown = try body.countdown() { scene.countdownSeconds = countdown }
            try await scene.save(on: store.db)
            return try SceneResponse(scene)
        }
        group.delete(":scene") { _, context in
            let (_, scene) = try await ownedScene(context)
            try await scene.delete(on: store.db)
            return HTTPResponse.Status.noContent
        }
        // Puts the scene on stage, with the transition and theme the host chose; the comment on
        // screen stays; a countdown scene starts its clock now, any other stops one.
        group.post(":scene/show") { _, context -> StageBody in
            let (broadcast, scene) = try await ownedScene(context)
            guard broadcast.status != BroadcastStatus.ended.rawValue else {
                throw APIError(.conflict, "broadcast_ended", "an ended broadcast has no stage to arrange")
            }
            let current = broadcast.currentStage
            var stage = scene.stage
            stage.transition = current.transition
            stage.comment = current.comment
            stage.theme = current.theme
            stage.countdown = scene.countdownSeconds.map { Stage.Countdown(label: scene.name, seconds: $0) }
            return StageBody(try await arrange(stage, in: broadcast))
        }
    }

    private func ownedScene(_ context: AppContext) async throws -> (Broadcast, StageScene) {
        let broadcast = try await ownedBroadcast(context.parameters.get("id"), context: context)
        let id = try Validate.uuid(context.parameters.get("scene"), what: "scene")
        guard let scene = try await StageScene.find(id, on: store.db), scene.broadcastID == broadcast.id else { throw APIError.notFound("scene") }
        return (broadcast, scene)
    }

    /// A scene holds what a stage may hold; the comment on screen and a running countdown are
    /// never part of one, and the theme is the show's, not the scene's.
    private func checkedScene(_ proposed: Stage, in broadcast: Broadcast) async throws -> Stage {
        var stage = proposed
        stage.comment = nil
        stage.countdown = nil
        stage.theme = .standard
        try await rooms.check(stage, in: broadcast)
        return stage
    }
}
