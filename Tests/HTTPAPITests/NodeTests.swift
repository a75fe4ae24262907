import Foundation
import Cluster
import HTTPAPI
import Hummingbird
import Testing

@Suite("The operator's node list")
struct NodeTests {
    @Test("GET /api/nodes lists this node with its load for the operator's token, and no one else")
    func nodesForTheOperatorOnly() async throws {
        try await withServer { api, node in
            let operatorToken = try OperatorToken.load(secretKey: nil, dataDirectory: node.configuration.dataDirectory).value
            node.heartbeat.serving(at: "https://node-a.example.com")
            #expect(await node.heartbeat.beat())

            #expect(try await api.call(.get, "/api/nodes").status == .unauthorized)
            let host = try await api.signUp()
            let refused = try await api.call(.get, "/api/nodes", token: host.accessToken)
            #expect(refused.status == .forbidden && refused.errorCode == "operator_only")
            let forged = try await api.call(.get, "/api/nodes", token: operatorToken.dropLast(2) + "xx")
            #expect(forged.status == .unauthorized && forged.errorCode == "invalid_token")

            let reply = try await api.call(.get, "/api/nodes", token: operatorToken)
            #expect(reply.status == .ok)
            #expect(reply["this"] as? String == node.heartbeat.id)
            let nodes = try #require(reply["nodes"] as? [[String: Any]])
            let this = try #require(nodes.first { $0["id"] as? String == node.heartbeat.id })
            #expect(this["url"] as? String == "https://node-a.example.com")
            #expect(this["draining"] as? Bool == false)
            let load = try #require(this["load"] as? [String: Any])
            #expect(load["live_programs"] as? Int == 0)
            #expect(load["program_capacity"] as? Int == node.configuration.maxLivePrograms)
            #expect((load["cpus"] as? Int ?? 0) >= 1)
            for key in ["cpu", "publishers", "subscribers", "egress_bps", "program_cost", "cpu_budget"] { #expect(load[key] != nil, "load lacks \(key)") }
        }
    }

    @Test("the operator's token opens nothing an account or a guest owns")
    func theOperatorOwnsNoBroadcast() async throws {
        try await withServer { api, node in
            let operatorToken = try OperatorToken.load(secretKey: nil, dataDirectory: node.configuration.dataDirectory).value
            let host = try await api.signUp()
            let broadcast = try await api.createBroadcast(host.accessToken)
            for (method, path) in [(HTTPRequest.Method.get, "/api/broadcasts"), (.get, "/api/broadcasts/\(broadcast)"), (.get, "/api/ice-servers"),
                                   (.get, "/api/recordings")] {
                let reply = try await api.call(method, path, token: operatorToken)
                #expect(reply.status == .forbidden, "\(path) answered \(reply.status)")
            }
        }
    }
}
