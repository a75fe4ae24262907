import FluentKit
import Cluster
import Foundation
import OutboundHTTP
import Hummingbird
import Ingest
import Layout
import Logging
import MediaPlane
import Registry
import Relay
import Rooms
import SFU
import Store

/// What every route needs, built once per server.
struct API: Sendable {
    let configuration: ServerConfiguration
    let layouts: LayoutLibrary
    let store: Store
    let registry: any Registry
    /// The media transport the SFU and the echo test open their sessions on.
    let transport: any MediaTransport
    let sfu: SFU
    /// Broadcasts' lifecycle, stage and programs.
    let rooms: RoomManager
    /// Each participant's own recording, uploaded from their page.
    let participantRecordings: ParticipantRecordings
    /// Hosts' libraries of video clips for the stage.
    let clips: ClipLibrary
    let auth: AuthService
    let studioSockets: SocketAllowance
    let ingest: IngestHub
    let whipIngest: WHIPIngest
    let boundRTMPPort: Int
    let boundSRTPort: Int
    let hlsSigner: HLSURLSigner
    let iceServers: ICEServerDirectory
    let nodes: NodeDirectory
    let nodeID: String
    /// Requests to other nodes (a program's HLS from its home), through the outbound policy.
    let peers: OutboundHTTPClient?
    /// This node's end of relays to other nodes, and the way to play media they take.
    let relays: RelayHub
    let remoteMedia: RemoteMedia
    let nodeToken: NodeToken
    let logger: Logger

    /// A broadcast the caller owns: 404 if there is none, 403 if it is someone else's.
    func ownedBroadcast(_ idText: String?, context: AppContext) async throws -> Broadcast {
        let userID = try context.requireUser()
        let id = try Validate.uuid(idText, what: "broadcast")
        guard let broadcast = try await Broadcast.find(id, on: store.db) else { throw APIError.notFound("broadcast") }
        guard broadcast.ownerID == userID else {
            throw APIError(.forbidden, "not_owner", "only the broadcast's owner can manage it")
        }
        return broadcast
    }

    /// The broadcast in the path (`parameter`), if the caller owns it or holds an invite to it.
    func memberBroadcast(_ context: AppContext, parameter: String = "broadcast") async throws -> Broadcast {
        let id = try Validate.uuid(context.parameters.get(parameter), what: "broadcast")
        switch context.identity {
        case .guest(let invited, _, _)?:
            guard invited == id else { throw APIError(.forbidden, "not_invited", "this invite is for another broadcast") }
            guard let broadcast = try await Broadcast.find(id, on: store.db) else { throw APIError.notFound("broadcast") }
            return broadcast
        case .user?, .operator?:
            return try await ownedBroadcast(id.uuidString, context: context)
        case nil:
            throw APIError.unauthorized
        }
    }

    /// Refuses the attempt with 429 once `bucket` has seen more than `limit` attempts a
    /// minute (by default the sign-in limit).
    func enforceRateLimit(_ bucket: String, limit: Int? = nil) async throws {
        let wait = try await auth.registryCall {
            try await registry.rateLimit(bucket, limit: limit ?? configuration.authAttemptsPerMinute, window: .seconds(60))
        }
        if let wait {
            let seconds = max(1, Int(wait.seconds.rounded(.up)))
            throw APIError(.tooManyRequests, "rate_limited", "too many attempts; try again in \(seconds) s", headers: [.retryAfter: String(seconds)])
        }
    }
}

/// Reads `Authorization: Bearer …` into the context. A token that is present but bad is a
/// 401 at once, so a client never silently acts anonymously.
struct AuthenticationMiddleware: RouterMiddleware {
    let auth: AuthService

    func handle(_ request: Request, context: AppContext, next: (Request, AppContext) async throws -> Response) async throws -> Response {
        // Stream keys and node tokens are checked by their own routes.
        guard let header = request.headers[.authorization], !request.uri.path.hasPrefix(API.whipIngestPath),
              !request.uri.path.hasPrefix(API.peerPrefix) else {
            return try await next(request, context)
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw APIError(.unauthorized, "invalid_token", "use Authorization: Bearer <token>")
        }
        var context = context
        context.identity = try await auth.authenticate(bearer: String(parts[1]))
        return try await next(request, context)
    }
}

/// A JSON response body with the API's encoding.
protocol APIResponse: ResponseEncodable {}

extension APIResponse {
    func created() -> EditedResponse<Self> {
        EditedResponse(status: .created, response: self)
    }
}
