import Hummingbird
import Ingest

extension API {
    /// WHIP into an ingest stream, for encoders (OBS 30+: service "WHIP", server
    /// `http://HOST:PORT/ingest/whip`, the stream key as its bearer token).
    func addWHIPIngestRoutes(to router: Hummingbird.Router<AppContext>) {
        router.post(RouterPath(Self.whipIngestPath)) { request, context in try await publishIngest(request, context) }
        router.delete(RouterPath("\(Self.whipIngestPath)/:session")) { _, context in
            guard await whipIngest.end(sessionID: context.parameters.get("session") ?? "") else { throw APIError.notFound("session") }
            return HTTPResponse.Status.ok
        }
    }

    /// Its bearer token is a stream key, not an access token: the authentication middleware
    /// leaves it alone.
    static let whipIngestPath = "/ingest/whip"

    private func publishIngest(_ request: Request, _ context: AppContext) async throws -> Response {
        let parts = request.headers[.authorization]?.split(separator: " ", maxSplits: 1) ?? []
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty else {
            throw APIError(.unauthorized, "stream_key_required", "send the stream key as Authorization: Bearer <stream key>")
        }
        // Keys are long and random, but guessing stays slow all the same.
        try await enforceRateLimit("whip-ingest:\(context.clientAddress ?? "unknown")")
        let offer = try await Self.readOffer(request)
        do {
            let (_, session, answer) = try await Self.openingSession {
                try await whipIngest.publish(streamKey: String(parts[1]), offer: offer, remoteAddress: context.clientAddress ?? "unknown")
            }
            return Self.sdpResponse(answer, location: "\(Self.whipIngestPath)/\(session)")
        } catch WHIPIngestError.refused(let reason) {
            throw APIError(.forbidden, "publish_refused", reason)
        } catch WHIPIngestError.unsupportedOffer(let reason) {
            throw APIError(.unsupportedMediaType, "unsupported_codec", reason)
        }
    }
}
