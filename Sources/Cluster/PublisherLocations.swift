import Registry

/// Where each participant's media is published: the node whose SFU took it, kept in the
/// registry (`media:{broadcast}:{participant}`) so any node can ask that one for a relay and
/// any studio knows who publishes, whichever node its socket reached.
public struct PublisherLocations: Sendable {
    let registry: any Registry
    public let nodeID: String
    /// Long enough for any show; a newer publish on another node overwrites it.
    static let ttl: Duration = .seconds(24 * 3600)

    public init(registry: any Registry, nodeID: String) {
        self.registry = registry
        self.nodeID = nodeID
    }

    static func key(_ broadcastID: String, _ participantID: String) -> String { "media:\(broadcastID):\(participantID)" }

    /// This node now takes the participant's media.
    public func published(broadcastID: String, participantID: String) async {
        try? await registry.set(Self.key(broadcastID, participantID), nodeID, ttl: Self.ttl)
    }

    /// The participant's media left this node (unless it already moved to another).
    public func unpublished(broadcastID: String, participantID: String) async {
        _ = try? await registry.delete(Self.key(broadcastID, participantID), ifEqualTo: nodeID)
    }

    /// The node the participant publishes on, if any.
    public func node(broadcastID: String, participantID: String) async -> String? {
        try? await registry.get(Self.key(broadcastID, participantID))
    }

    /// Those of `participants` who publish on a node that is up.
    public static func publishing(in registry: any Registry, broadcastID: String, among participants: [String]) async -> Set<String> {
        guard !participants.isEmpty, let live = try? await NodeDirectory(registry: registry).nodes() else { return [] }
        let nodes = Set(live.map(\.id))
        var publishing: Set<String> = []
        for participant in participants {
            if let node = try? await registry.get(key(broadcastID, participant)), nodes.contains(node) { publishing.insert(participant) }
        }
        return publishing
    }
}
