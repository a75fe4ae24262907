import Foundation
import HTTPAPI
import Hummingbird
import Store
import Testing

@Suite("POST /api/node/relays: other nodes only")
struct RelayRouteTests {
    @Test("without the node token nobody opens a relay: no token, an account's, the operator's or a forged one")
    func onlyNodes() async throws {
        try await withServer { api, node in
            let secret = try MasterSecret.load(configured: nil, dataDirectory: node.configuration.dataDirectory)
            let nodeToken = NodeToken(secret: secret).value
            let operatorToken = OperatorToken(secret: secret).value
            let host = try await api.signUp()
            let broadcast = try await api.createBroadcast(host.accessToken)
            let request: [String: any Sendable] = ["broadcast_id": broadcast, "participant_id": UUID().uuidString, "relay_id": 7,
                                                  "nonce": Data(repeating: 1, count: 16).base64EncodedString()]
            for token in [nil, host.accessToken, operatorToken, String(nodeToken.dropLast(2)) + "xx", "tally_node_"] {
                let reply = try await api.call(.post, "/api/node/relays", json: request, token: token)
                #expect(reply.status == .unauthorized && reply.errorCode == "node_token_required", "\(token ?? "no token") opened a relay")
            }
            // The node token opens only this route.
            #expect(try await api.call(.get, "/api/broadcasts", token: nodeToken).status == .unauthorized)

            let notPublishing = try await api.call(.post, "/api/node/relays", json: request, token: nodeToken)
            #expect(notPublishing.status == .notFound && notPublishing.errorCode == "not_publishing")
            var badNonce = request
            badNonce["nonce"] = "c2hvcnQ="
            let refused = try await api.call(.post, "/api/node/relays", json: badNonce, token: nodeToken)
            #expect(refused.status == .badRequest && refused.errorCode == "invalid_relay_request")
            var badID = request
            badID["participant_id"] = "../../etc"
            let refusedID = try await api.call(.post, "/api/node/relays", json: badID, token: nodeToken)
            #expect(refusedID.status == .badRequest && refusedID.errorCode == "invalid_relay_request")
            let junk = try await api.call(.post, "/api/node/relays", token: nodeToken, body: ByteBuffer(string: "{"))
            #expect(junk.status == .badRequest && junk.errorCode == "invalid_json")
        }
    }
}
