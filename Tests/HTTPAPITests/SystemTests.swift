import Foundation
import HTTPAPI
import Hummingbird
import NIOCore
import Testing

@Suite("Health, metrics, OpenAPI and the error shape")
struct SystemTests {
    @Test("health reports the store and the registry with their backends")
    func health() async throws {
        try await withServer { api, _ in
            let reply = try await api.call(.get, "/api/health")
            #expect(reply.status == .ok)
            #expect(reply["status"] as? String == "ok")
            let store = try #require(reply["store"] as? [String: Any])
            let registry = try #require(reply["registry"] as? [String: Any])
            #expect(store["status"] as? String == "ok")
            #expect(store["backend"] as? String == (TestBackend.databaseURL == nil ? "sqlite" : "postgres"))
            #expect(registry["backend"] as? String == (TestBackend.redisURL == nil ? "in-process" : "redis"))
        }
    }

    @Test("health is 503 when the registry cannot be reached")
    func healthWithoutRegistry() async throws {
        try await withServer(configure: { $0.redisURL = "redis://127.0.0.1:1" }) { api, _ in
            let reply = try await api.call(.get, "/api/health")
            #expect(reply.status == .serviceUnavailable)
            #expect((reply["registry"] as? [String: Any])?["status"] as? String == "unavailable")
            let register = try await api.call(.post, "/api/auth/register", json: ["email": "a@example.com", "password": "long enough", "name": "A"])
            #expect(register.status == .serviceUnavailable && register.errorCode == "registry_unavailable")
            #expect(register.headers[.retryAfter] != nil)
        }
    }

    @Test("metrics are Prometheus text and count requests")
    func metrics() async throws {
        try await withServer { api, _ in
            _ = try await api.call(.get, "/api/health")
            let reply = try await api.call(.get, "/metrics")
            #expect(reply.status == .ok)
            #expect(reply.headers[.contentType]?.hasPrefix("text/plain") == true)
            #expect(reply.text.contains("hb_requests"))
        }
    }

    @Test("the OpenAPI document is served and lists every route family")
    func openAPI() async throws {
        try await withServer { api, _ in
            let reply = try await api.call(.get, "/openapi.yaml")
            #expect(reply.status == .ok)
            #expect(reply.text.hasPrefix("openapi: 3.1"))
            for path in ["/api/auth/register:", "/api/broadcasts/{id}/start:", "/api/broadcasts/{id}/destinations/{destId}:", "/api/recordings/{id}:", "/api/upload:", "/api/health:"] {
                #expect(reply.text.contains(path), "missing \(path)")
            }
        }
    }

    @Test("unknown routes, wrong methods and oversized bodies use the JSON error shape")
    func errorShape() async throws {
        try await withServer { api, _ in
            let missing = try await api.call(.get, "/api/nothing-here")
            #expect(missing.status == .notFound && missing.errorCode == "not_found")
            #expect(missing.headers[.contentType]?.hasPrefix("application/json") == true)
            let host = try await api.signUp()
            let huge = ByteBuffer(string: "{\"title\": \"" + String(repeating: "x", count: 70_000) + "\"}")
            let tooLarge = try await api.call(.post, "/api/broadcasts", token: host.accessToken, headers: [.contentType: "application/json"], body: huge)
            #expect(tooLarge.status == .contentTooLarge && tooLarge.errorCode == "payload_too_large")
        }
    }
}
