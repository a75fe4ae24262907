import Foundation
import Registry

/// The deployment's nodes as the registry knows them: each node's record under its own key
/// and its id in an expiring set, both with the heartbeat's TTL, so a node that stops
/// beating drops out of the list by itself.
public struct NodeDirectory: Sendable {
    private let registry: any Registry
    static let set = "nodes"

    public init(registry: any Registry) {
        self.registry = registry
    }

    static func key(_ id: String) -> String { "node:\(id)" }

    public func announce(_ record: NodeRecord, ttl: Duration) async throws {
        let text = String(decoding: try Self.encoder.encode(record), as: UTF8.self)
        try await registry.set(Self.key(record.id), text, ttl: ttl)
        try await registry.addMember(Self.set, record.id, ttl: ttl)
    }

    /// Takes a node off the list at once, as it shuts down.
    public func withdraw(_ id: String) async throws {
        try await registry.removeMember(Self.set, id)
        try await registry.delete(Self.key(id))
    }

    /// Every node whose heartbeat has not lapsed, by id. A record that cannot be read (a
    /// newer node's format) is left out rather than failing the list.
    public func nodes() async throws -> [NodeRecord] {
        var records: [NodeRecord] = []
        for id in try await registry.members(Self.set) {
            guard let text = try await registry.get(Self.key(id)),
                  let record = try? Self.decoder.decode(NodeRecord.self, from: Data(text.utf8)) else { continue }
            records.append(record)
        }
        return records.sorted { $0.id < $1.id }
    }

    private static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        return encoder
    }

    private static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return decoder
    }
}
