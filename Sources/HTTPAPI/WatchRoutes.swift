import FluentKit
import Foundation
import Hummingbird
import Rooms
import SFU
import Store

struct ShareRequest: Decodable {
    var expiresInSeconds: Int?
}

struct ShareResponse: APIResponse {
    var id: String
    var token: String
    /// The watch page, for anyone the host gives it to.
    var url: String
    var expiresAt: Date
}

/// What a viewer's watch page shows and plays.
struct WatchResponse: APIResponse {
    var title: String
    /// `scheduled` (starting soon), `live` or `ended`.
    var status: String
    var startedAt: Date?
    var endedAt: Date?
    /// Viewers playing the program over WHEP now.
    var viewers: Int
    /// The program over WHEP (POST an offer) and, for browsers that play it natively, HLS.
    var whepUrl: String
    var hlsUrl: String
    var iceServers: [ICEServerDirectory.Server]
}

extension API {
    static let maxShareLifetime = 30 * 24 * 3600
    static let sharesPerMinute = 20
    /// Viewers one broadcast's program plays to over WHEP at once; past it the page falls
    /// back to HLS, which costs the server no WebRTC session.
    static let maxWHEPViewers = 500

    func addWatchRoutes(to router: Hummingbird.Router<AppContext>) {
        router.get("watch/:broadcast") { _, _ in try page("watch.html") }
        // The host makes and withdraws watch links.
        router.post("api/broadcasts/:id/shares") { request, context -> EditedResponse<ShareResponse> in
            let broadcast = try await ownedBroadcast(context.parameters.get("id"), context: context)
            // Each link is kept in the registry until it expires: one account makes only so many.
            try await enforceRateLimit("shares:\(try context.requireUser())", limit: Self.sharesPerMinute)
            let lifetime = try await request.decodeOptionalJSON(ShareRequest.self, context: context)?.expiresInSeconds ?? 7 * 24 * 3600
            guard (60...Self.maxShareLifetime).contains(lifetime) else {
                throw APIError(.badRequest, "invalid_field", "`expires_in_seconds` must be between 60 and \(Self.maxShareLifetime)")
            }
            let (token, expiresAt, id) = try await auth.issueShare(broadcastID: try broadcast.requireID(), lifetime: .seconds(lifetime))
            let url = "\(baseURL(request, context))/watch/\(try broadcast.requireID().uuidString)?share=\(token)"
            return ShareResponse(id: id, token: token, url: url, expiresAt: expiresAt).created()
        }
        router.delete("api/broadcasts/:id/shares/:share") { _, context -> HTTPResponse.Status in
            let broadcast = try await ownedBroadcast(context.parameters.get("id"), context: context)
            let share = try Validate.text(context.parameters.get("share") ?? "", field: "share", max: 64)
            guard try await auth.revokeShare(id: share, broadcastID: try broadcast.requireID()) else { throw APIError.notFound("share") }
            return .noContent
        }
        // The viewer's side: the watch link's token in `?share=`, nothing else.
        router.get("api/watch/:broadcast") { request, context -> WatchResponse in
            let (broadcast, shareID) = try await sharedBroadcast(request, context)
            let id = try broadcast.requireID().uuidString
            let share = request.uri.queryParameters.get("share") ?? ""
            return WatchResponse(
                title: broadcast.title, status: broadcast.status, startedAt: broadcast.startedAt, endedAt: broadcast.endedAt,
                viewers: await transport.sessionCount(tag: SFU.playTag(ProgramWatch.routerID(id))),
                whepUrl: "/api/watch/\(id)/whep?share=\(share)", hlsUrl: "/hls/\(id)/index.m3u8",
                iceServers: iceServers.servers(identity: "share:\(shareID)", address: context.clientAddress, host: turnHost(request)))
        }
        router.post("api/watch/:broadcast/whep") { request, context -> Response in
            let (broadcast, shareID) = try await sharedBroadcast(request, context)
            let id = try broadcast.requireID().uuidString
            guard broadcast.status == BroadcastStatus.live.rawValue else {
                throw APIError(.conflict, "not_live", "the program plays once the broadcast is live", headers: [.retryAfter: "2"])
            }
            guard await transport.sessionCount(tag: SFU.playTag(ProgramWatch.routerID(id))) < Self.maxWHEPViewers else {
                throw APIError(.serviceUnavailable, "too_many_viewers", "this broadcast has as many WebRTC viewers as it takes; play its HLS instead",
                               headers: [.retryAfter: "30"])
            }
            let identity = viewerIdentity(shareID, context)
            let owner = SessionOwner(identity: identity, address: context.clientAddress ?? "unknown")
            let offer = try await Self.readOffer(request)
            do {
                let (session, answer) = try await Self.openingSession {
                    try await playAnywhere(broadcastID: ProgramWatch.routerID(id), participantID: ProgramWatch.participantID, offer: offer, owner: owner)
                }
                let share = request.uri.queryParameters.get("share") ?? ""
                return sdpResponse(answer, location: "/api/watch/\(id)/whep/\(session)?share=\(share)", request: request, context: context, identity: identity)
            } catch SFUError.notPublishing {
                throw APIError(.conflict, "not_live", "the program is starting; try again in a moment", headers: [.retryAfter: "1"])
            }
        }
        router.delete("api/watch/:broadcast/whep/:session") { request, context -> HTTPResponse.Status in
            let (broadcast, shareID) = try await sharedBroadcast(request, context)
            guard await transport.close(sessionID: SessionID(context.parameters.get("session") ?? ""), tag: SFU.playTag(ProgramWatch.routerID(try broadcast.requireID().uuidString)),
                                     identity: viewerIdentity(shareID, context), reason: "closed by the viewer") else {
                throw APIError.notFound("session")
            }
            return .ok
        }
    }

    /// The broadcast a watch link opens, with the link's id.
    private func sharedBroadcast(_ request: Request, _ context: AppContext) async throws -> (Broadcast, String) {
        let id = try Validate.uuid(context.parameters.get("broadcast"), what: "broadcast")
        guard let token = request.uri.queryParameters.get("share") else {
            throw APIError(.unauthorized, "share_required", "open the watch page from the link the host shared")
        }
        let shareID = try await auth.authenticateShare(String(token), broadcastID: id)
        guard let broadcast = try await Broadcast.find(id, on: store.db) else { throw APIError.notFound("broadcast") }
        return (broadcast, shareID)
    }

    /// A viewer's media sessions belong to the link and their address together: one link
    /// watched from many places is many viewers, each capped as an address is.
    private func viewerIdentity(_ shareID: String, _ context: AppContext) -> String {
        "share:\(shareID):\(context.clientAddress ?? "unknown")"
    }
}
