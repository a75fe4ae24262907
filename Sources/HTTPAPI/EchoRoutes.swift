import Hummingbird
import NIOCore
import MediaPlane
import SDP

extension API {
    /// `POST /api/echo` with WHIP semantics (RFC 9725 §4.2): the green room's connection test.
    func addEchoRoutes(to router: Router<AppContext>) {
        router.post("api/echo") { request, context in try await openEcho(request, context) }
        router.delete("api/echo/:session") { _, context in
            let owner = try context.sessionOwner()
            let id = SessionID(context.parameters.get("session") ?? "")
            guard await transport.close(sessionID: id, tag: Self.echoTag, identity: owner.identity, reason: "closed by the client") else {
                throw APIError.notFound("session")
            }
            return HTTPResponse.Status.ok
        }
    }

    private func openEcho(_ request: Request, _ context: AppContext) async throws -> Response {
        let owner = try context.sessionOwner()
        let offer = try await Self.readOffer(request)
        let (id, answer) = try await Self.openingSession {
            try await transport.open(offer: offer, tag: Self.echoTag, owner: owner, intent: EchoSink.intent(for:)) { EchoSink(answer: $0) }
        }
        return sdpResponse(answer.text, location: "/api/echo/\(id)", request: request, context: context, identity: owner.identity)
    }

    static let echoTag = "echo"

    /// The offer of a WHIP/WHEP request: `application/sdp`, at most 64 KiB, parseable.
    static func readOffer(_ request: Request) async throws -> SessionDescription {
        let type = request.headers[.contentType]?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard type == "application/sdp" else {
            throw APIError(.unsupportedMediaType, "unsupported_media_type", "send the SDP offer with Content-Type: application/sdp")
        }
        let body = try await request.body.collect(upTo: 64 * 1024)
        do {
            return try SDPParser.parse(String(buffer: body))
        } catch {
            throw APIError(.badRequest, "invalid_sdp", error.description)
        }
    }

    /// Opens a WebRTC session for a WHIP/WHEP-style request: an offer that cannot be
    /// answered is 400, a full media server 503; other errors pass through for the route.
    static func openingSession<T>(_ open: () async throws -> T) async throws -> T {
        do {
            return try await open()
        } catch let error as SDPError {
            throw APIError(.badRequest, "unacceptable_offer", error.description)
        } catch let error as MediaTransportError {
            switch error {
            case .tooManySessionsForOwner, .tooManySessionsForAddress:
                throw APIError(.tooManyRequests, "too_many_sessions", "\(error.description); close one first", headers: [.retryAfter: "10"])
            case .tooManyMediaSections:
                throw APIError(.badRequest, "too_many_media_sections", error.description)
            case .tooManySessions, .notRunning:
                throw APIError(.serviceUnavailable, "media_server_full", "the media server is full; try again shortly", headers: [.retryAfter: "5"])
            }
        }
    }
}
