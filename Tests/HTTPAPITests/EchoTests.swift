import Foundation
import HTTPAPI
import Hummingbird
import NIOCore
import Testing

@Suite("POST /api/echo: WHIP semantics for the connection test")
struct EchoTests {
    static let chromeOffer = try! String(
        contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("SDPTests/Fixtures/chrome-sendrecv.sdp"), encoding: .utf8)

    @Test("an offer gets 201, a Location, and an ICE-lite answer with our candidates; DELETE ends it")
    func openAndClose() async throws {
        try await withServer { api, services in
            let host = try await api.signUp()
            let reply = try await api.call(.post, "/api/echo", token: host.accessToken, headers: [.contentType: "application/sdp"],
                                           body: ByteBuffer(string: Self.chromeOffer))
            #expect(reply.status == .created, "\(reply.text)")
            #expect(reply.headers[.contentType] == "application/sdp")
            let location = try #require(reply.headers[.location])
            #expect(location.hasPrefix("/api/echo/"))
            let answer = reply.text
            #expect(answer.contains("a=ice-lite") && answer.contains("a=setup:passive") && answer.contains("a=sendrecv"))
            #expect(answer.contains("127.0.0.1 \(services.webrtc.boundUDPPort!) typ host"))
            #expect(answer.contains("tcptype passive"))
            #expect(await services.webrtc.sessionCount == 1)
            #expect(try await api.call(.delete, location, token: host.accessToken).status == .ok)
            #expect(try await api.call(.delete, location, token: host.accessToken).status == .notFound)
            #expect(await services.webrtc.sessionCount == 0)
        }
    }

    @Test("a session closes only through the endpoint that opened it")
    func ownEndpointOnly() async throws {
        try await withServer { api, services in
            let host = try await api.signUp()
            let broadcast = try await api.createBroadcast(host.accessToken)
            let reply = try await api.call(.post, "/api/echo", token: host.accessToken, headers: [.contentType: "application/sdp"],
                                           body: ByteBuffer(string: Self.chromeOffer))
            let session = try #require(reply.headers[.location]?.split(separator: "/").last)
            let viaWHEP = try await api.call(.delete, "/whep/\(broadcast)/\(UUID())/\(session)", token: host.accessToken)
            #expect(viaWHEP.status == .notFound)
            #expect(await services.webrtc.sessionCount == 1)
        }
    }

    @Test("the echo needs a token, application/sdp and an offer it can accept")
    func refusals() async throws {
        try await withServer { api, _ in
            let host = try await api.signUp()
            let anonymous = try await api.call(.post, "/api/echo", headers: [.contentType: "application/sdp"], body: ByteBuffer(string: Self.chromeOffer))
            #expect(anonymous.status == .unauthorized)
            let json = try await api.call(.post, "/api/echo", token: host.accessToken, headers: [.contentType: "application/json"], body: ByteBuffer(string: "{}"))
            #expect(json.status == .unsupportedMediaType)
            let garbage = try await api.call(.post, "/api/echo", token: host.accessToken, headers: [.contentType: "application/sdp"], body: ByteBuffer(string: "hello"))
            #expect(garbage.status == .badRequest && garbage.errorCode == "invalid_sdp")
            let noBundle = Self.chromeOffer.replacingOccurrences(of: "a=group:BUNDLE 0 1\r\n", with: "")
            let refused = try await api.call(.post, "/api/echo", token: host.accessToken, headers: [.contentType: "application/sdp"], body: ByteBuffer(string: noBundle))
            #expect(refused.status == .badRequest && refused.errorCode == "unacceptable_offer")
        }
    }
}
