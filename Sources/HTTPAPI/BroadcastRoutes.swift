import FluentKit
import Foundation
import Hummingbird
import Layout
import Rooms
import Store

struct SettingsPatch: Decodable {
    var layout: String?
    var resolution: String?
    var record: Bool?

    func applied(to settings: BroadcastSettings, layouts: LayoutLibrary) throws -> BroadcastSettings {
        var result = settings
        if let layout {
            guard layouts.layout(named: layout) != nil else {
                throw APIError(.badRequest, "invalid_field", "`settings.layout` must be one of \(layouts.layouts.map(\.name).joined(separator: ", "))")
            }
            result.layout = layout
        }
        if let resolution {
            guard BroadcastSettings.resolutions.contains(resolution) else {
                throw APIError(.badRequest, "invalid_field", "`settings.resolution` must be one of \(BroadcastSettings.resolutions.joined(separator: ", "))")
            }
            result.resolution = resolution
        }
        if let record { result.record = record }
        return result
    }
}

struct CreateBroadcastRequest: Decodable {
    var title: String
    var description: String?
    var scheduledAt: Date?
    var settings: SettingsPatch?
}

struct UpdateBroadcastRequest: Decodable {
    var title: String?
    var description: String?
    var scheduledAt: Date?
    var settings: SettingsPatch?
}

struct InviteRequest: Decodable {
    var name: String?
    var expiresInSeconds: Int?
}

struct BroadcastResponse: APIResponse {
    var id: UUID
    var ownerId: UUID
    var title: String
    var description: String
    var status: String
    var settings: BroadcastSettings
    var scheduledAt: Date?
    var startedAt: Date?
    var endedAt: Date?
    var createdAt: Date?
    var updatedAt: Date?
    var destinations: [DestinationResponse]?

    init(_ broadcast: Broadcast, destinations: [Destination]? = nil) throws {
        id = try broadcast.requireID()
        ownerId = broadcast.ownerID
        title = broadcast.title
        description = broadcast.description
        status = broadcast.status
        settings = broadcast.settings
        scheduledAt = broadcast.scheduledAt
        startedAt = broadcast.startedAt
        endedAt = broadcast.endedAt
        createdAt = broadcast.createdAt
        updatedAt = broadcast.updatedAt
        self.destinations = try destinations?.map(DestinationResponse.init)
    }
}

struct BroadcastListResponse: APIResponse {
    var broadcasts: [BroadcastResponse]
}

struct InviteResponse: APIResponse {
    /// What `DELETE /api/broadcasts/{id}/invites/{inviteId}` names to withdraw it.
    var id: String
    var token: String
    var url: String
    var broadcastId: UUID
    var expiresAt: Date
}

extension API {
    static let maxInviteLifetime = 30 * 24 * 3600

    /// Moves a broadcast through its lifecycle (the REST API and the studio's go-live both
    /// come here), in the API's words when the room manager refuses.
    func apply(_ event: BroadcastLifecycle.Event, to broadcast: Broadcast) async throws {
        try await rooms.apply(event, to: broadcast)
    }

    func announce(_ event: String?, in broadcast: UUID) async {
        await rooms.announce(event, in: broadcast)
    }

    func addBroadcastRoutes(to router: Router<AppContext>) {
        let group = router.group("api/broadcasts")
        group.get { request, context in
            let userID = try context.requireUser()
            var query = Broadcast.query(on: store.db).filter(\.$ownerID == userID).sort(\.$createdAt, .descending)
            if let status = request.uri.queryParameters["status"].map(String.init) {
                guard BroadcastStatus(rawValue: status) != nil else {
                    throw APIError(.badRequest, "invalid_field", "`status` must be scheduled, live or ended")
                }
                query = query.filter(\.$status == status)
            }
            return BroadcastListResponse(broadcasts: try await query.all().map { try BroadcastResponse($0) })
        }
        group.post { request, context in try await create(request, context) }
        group.get(":id") { _, context in try await show(context) }
        group.patch(":id") { request, context in try await update(request, context) }
        group.delete(":id") { _, context in
            let broadcast = try await ownedBroadcast(context.parameters.get("id"), context: context)
            guard BroadcastLifecycle.canDelete(BroadcastStatus(rawValue: broadcast.status) ?? .ended) else {
                throw APIError(.conflict, "broadcast_live", "end the broadcast before deleting it")
            }
            try await broadcast.delete(on: store.db)
            logger.info("broadcast deleted", metadata: ["broadcast": "\(broadcast.loggedID)"])
            return HTTPResponse.Status.noContent
        }
        group.post(":id/start") { _, context in try await transition(.start, context) }
        group.post(":id/end") { _, context in try await transition(.end, context) }
        group.post(":id/invites") { request, context in try await invite(request, context) }
        // Withdraws an invite: its guests' requests stop working at once, their studio
        // sockets within seconds, and their media sessions are closed.
        group.delete(":id/invites/:invite") { _, context -> HTTPResponse.Status in
            let broadcast = try await ownedBroadcast(context.parameters.get("id"), context: context)
            let invite = try Validate.text(context.parameters.get("invite") ?? "", field: "invite", max: 64)
            guard try await auth.revokeInvite(id: invite, broadcastID: try broadcast.requireID()) else { throw APIError.notFound("invite") }
            let closed = await transport.close(identity: Identity.sessionKey(invite: invite), reason: "the invite was withdrawn")
            logger.info("invite withdrawn", metadata: ["broadcast": "\(context.parameters.get("id") ?? "")", "sessions_closed": "\(closed)"])
            return .noContent
        }
    }

    private func create(_ request: Request, _ context: AppContext) async throws -> EditedResponse<BroadcastResponse> {
        let userID = try context.requireUser()
        let body = try await request.decodeJSON(CreateBroadcastRequest.self, context: context)
        let broadcast = Broadcast(
            ownerID: userID,
            title: try Validate.text(body.title, field: "title", max: 200),
            description: try Validate.text(body.description ?? "", field: "description", max: 5000, allowEmpty: true),
            settings: try (body.settings ?? SettingsPatch()).applied(to: BroadcastSettings(), layouts: layouts),
            scheduledAt: body.scheduledAt)
        // A new show wears its host's brand from the start.
        if let theme = try await User.find(userID, on: store.db)?.theme {
            broadcast.stage = Stage(layout: broadcast.settings.layout, theme: theme)
        }
        try await broadcast.create(on: store.db)
        logger.info("broadcast created", metadata: ["broadcast": "\(broadcast.loggedID)", "owner": "\(userID)"])
        return try BroadcastResponse(broadcast, destinations: []).created()
    }

    /// Owners see everything; an invited guest may read the broadcast it was invited to.
    private func show(_ context: AppContext) async throws -> BroadcastResponse {
        let broadcast = try await memberBroadcast(context, parameter: "id")
        guard case .user? = context.identity else { return try BroadcastResponse(broadcast) }
        let destinations = try await Destination.query(on: store.db).filter(\.$broadcastID == (try broadcast.requireID())).sort(\.$createdAt).all()
        return try BroadcastResponse(broadcast, destinations: destinations)
    }

    private func update(_ request: Request, _ context: AppContext) async throws -> BroadcastResponse {
        let broadcast = try await ownedBroadcast(context.parameters.get("id"), context: context)
        let body = try await request.decodeJSON(UpdateBroadcastRequest.self, context: context)
        guard broadcast.status != BroadcastStatus.ended.rawValue else {
            throw APIError(.conflict, "broadcast_ended", "an ended broadcast cannot be changed")
        }
        if let title = body.title { broadcast.title = try Validate.text(title, field: "title", max: 200) }
        if let description = body.description {
            broadcast.description = try Validate.text(description, field: "description", max: 5000, allowEmpty: true)
        }
        if let scheduledAt = body.scheduledAt { broadcast.scheduledAt = scheduledAt }
        if let settings = body.settings { broadcast.settings = try settings.applied(to: broadcast.settings, layouts: layouts) }
        try await broadcast.save(on: store.db)
        return try BroadcastResponse(broadcast)
    }

    private func transition(_ event: BroadcastLifecycle.Event, _ context: AppContext) async throws -> BroadcastResponse {
        let broadcast = try await ownedBroadcast(context.parameters.get("id"), context: context)
        try await apply(event, to: broadcast)
        return try BroadcastResponse(broadcast)
    }

    private func invite(_ request: Request, _ context: AppContext) async throws -> EditedResponse<InviteResponse> {
        let broadcast = try await ownedBroadcast(context.parameters.get("id"), context: context)
        guard broadcast.status != BroadcastStatus.ended.rawValue else {
            throw APIError(.conflict, "broadcast_ended", "an ended broadcast takes no guests")
        }
        let body = try await request.decodeOptionalJSON(InviteRequest.self, context: context)
        let lifetime = body?.expiresInSeconds ?? 24 * 3600
        guard (60...Self.maxInviteLifetime).contains(lifetime) else {
            throw APIError(.badRequest, "invalid_field", "`expires_in_seconds` must be between 60 and \(Self.maxInviteLifetime)")
        }
        let name = try body?.name.map { try Validate.text($0, field: "name", max: 100) }
        let (token, expiresAt, inviteID) = try await auth.issueInvite(broadcastID: try broadcast.requireID(), name: name, lifetime: .seconds(lifetime))
        return InviteResponse(
            id: inviteID, token: token, url: "\(baseURL(request, context))/join/\(try broadcast.requireID().uuidString)?invite=\(token)", broadcastId: try broadcast.requireID(),
            expiresAt: expiresAt
        ).created()
    }
}
