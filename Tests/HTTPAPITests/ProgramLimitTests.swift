import Foundation
import HTTPAPI
import Hummingbird
import Testing

/// Four empty 1080p60 programs from one free account took both cores of a node: live
/// programs are capped per user and per node, and the refusal says which cap.
@Suite("Live programs: limits per user and per node")
struct ProgramLimitTests {
    @Test("a user's second program is 429, the node's third 409; ending one frees its place")
    func limits() async throws {
        try await withServer(configure: { $0.maxLivePrograms = 2; $0.maxLiveProgramsPerUser = 1 }) { api, _ in
            let alice = try await api.signUp()
            let bob = try await api.signUp()
            let carol = try await api.signUp()
            let first = try await api.createBroadcast(alice.accessToken)
            let second = try await api.createBroadcast(alice.accessToken)
            #expect(try await api.call(.post, "/api/broadcasts/\(first)/start", token: alice.accessToken).status == .ok)
            let again = try await api.call(.post, "/api/broadcasts/\(second)/start", token: alice.accessToken)
            #expect(again.status == .tooManyRequests && again.errorCode == "too_many_live_programs", "\(again.text)")
            #expect(try await api.call(.get, "/api/broadcasts/\(second)", token: alice.accessToken)["status"] as? String == "scheduled")

            let bobs = try await api.createBroadcast(bob.accessToken)
            #expect(try await api.call(.post, "/api/broadcasts/\(bobs)/start", token: bob.accessToken).status == .ok)
            let carols = try await api.createBroadcast(carol.accessToken)
            let full = try await api.call(.post, "/api/broadcasts/\(carols)/start", token: carol.accessToken)
            #expect(full.status == .conflict && full.errorCode == "server_at_capacity", "\(full.text)")

            #expect(try await api.call(.post, "/api/broadcasts/\(first)/end", token: alice.accessToken).status == .ok)
            #expect(try await api.call(.post, "/api/broadcasts/\(second)/start", token: alice.accessToken).status == .ok)
            _ = try await api.call(.post, "/api/broadcasts/\(second)/end", token: alice.accessToken)
            _ = try await api.call(.post, "/api/broadcasts/\(bobs)/end", token: bob.accessToken)
        }
    }
}
