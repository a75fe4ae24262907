import Cluster
import Hummingbird

struct NodesResponse: APIResponse {
    /// The node that answered.
    var this: String
    var nodes: [NodeRecord]
}

extension API {
    /// `GET /api/nodes`, for the operator only: every node whose heartbeat is current, with
    /// its URL and load.
    func addNodeRoutes(to router: Router<AppContext>) {
        router.get("api/nodes") { _, context -> NodesResponse in
            switch context.identity {
            case .operator?: break
            case nil: throw APIError.unauthorized
            case .user?, .guest?: throw APIError(.forbidden, "operator_only", "only the operator's token (tally --operator-token) lists the nodes")
            }
            let records = try await auth.registryCall { try await nodes.nodes() }
            return NodesResponse(this: nodeID, nodes: records)
        }
    }
}
