import Hummingbird
import Ingest
import SFU

extension API {
    /// WHIP into an ingest stream, for encoders (OBS 30+: service "WHIP", server
    /// `http://HOST:PORT/ingest/whip`, the stream key as its bearer token).
    func addWHIPIngestRoutes(to router: Hummingbird.Router<AppContext>) {
        router.post(RouterPath(Self.whipIngestPath)) { request, context in try await publishIngest(request, context) }
        // The resource needs the stream key that created it (RFC 9725 §4.2); a session of
        // another key is as unknown as one that never was.
        router.delete(RouterPath("\(Self.whipIngestPath)/:session")) { request, context in
            let key = try Self.streamKey(request)
            guard await whipIngest.end(sessionID: SessionID(context.parameters.get("session") ?? ""), identity: Self.sessionIdentity(streamKey: key)) else {
                throw APIError.notFound("session")
            }
            return HTTPResponse.Status.ok
        }
    }

    /// Its bearer token is a stream key, not an access token: the authentication middleware
    /// leaves it alone.
    static let whipIngestPath = "/ingest/whip"

    static func streamKey(_ request: Request) throws -> String {
        let parts = request.headers[.authorization]?.split(separator: " ", maxSplits: 1) ?? []
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty else {
            throw APIError(.unauthorized, "stream_key_required", "send the stream key as Authorization: Bearer <stream key>")
        }
        return String(parts[1])
    }

    /// A WHIP ingest session's holder: the key's digest, so the key itself is kept nowhere.
    static func sessionIdentity(streamKey: String) -> String {
        "stream-key:\(AuthService.digest(streamKey))"
    }

    private func publishIngest(_ request: Request, _ context: AppContext) async throws -> Response {
        let key = try Self.streamKey(request)
        // Keys are long and random, but guessing stays slow all the same.
        try await enforceRateLimit("whip-ingest:\(context.clientAddress ?? "unknown")")
        let offer = try await Self.readOffer(request)
        do {
            let (_, session, answer) = try await Self.openingSession {
                try await whipIngest.publish(streamKey: key, offer: offer, owner: SessionOwner(
                    identity: Self.sessionIdentity(streamKey: key), address: context.clientAddress ?? "unknown"))
            }
            return sdpResponse(answer, location: "\(Self.whipIngestPath)/\(session)", request: request, context: context, identity: Self.sessionIdentity(streamKey: key))
        } catch WHIPIngestError.refused(let reason) {
            throw APIError(.forbidden, "publish_refused", reason)
        } catch WHIPIngestError.unsupportedOffer(let reason) {
            throw APIError(.unsupportedMediaType, "unsupported_codec", reason)
        }
    }
}
