import Foundation
import Registry
import Store

/// One node's claim on a broadcast: the registry's lease says who is home now, and the
/// generation in the store fences out a node whose lease lapsed (a pause, a cut network)
/// and went to another: its writes as owner are refused (`Store.asHome`).
public struct HomeLease: Sendable, Equatable {
    public var broadcast: UUID
    public var node: String
    public var generation: Int64

    /// The lease's value in the registry.
    var token: String { "\(node)#\(generation)" }
}

public enum HomeClaim: Sendable, Equatable {
    case claimed(HomeLease)
    /// Another node holds the broadcast (its id, as its heartbeat names it).
    case heldBy(String)
}

/// Claims, renews and releases broadcasts' homes for one node.
public struct HomeLeases: Sendable {
    private let registry: any Registry
    private let store: Store
    public let node: String
    /// A home that stops renewing (every 2 s) is free after this.
    public let ttl: Duration

    public init(registry: any Registry, store: Store, node: String, ttl: Duration = .seconds(10)) {
        self.registry = registry
        self.store = store
        self.node = node
        self.ttl = ttl
    }

    static func key(_ broadcast: UUID) -> String { "home:\(broadcast.uuidString.lowercased())" }

    private static func node(of token: String) -> String {
        String(token.split(separator: "#", maxSplits: 1).first ?? "")
    }

    /// Takes the broadcast for this node unless another node's lease on it is current.
    /// The lease is taken first and the generation bumped after, so two nodes racing for
    /// one broadcast never both come away with it.
    public func claim(_ broadcast: UUID) async throws -> HomeClaim {
        let key = Self.key(broadcast)
        let pending = "\(node)#claiming"
        guard try await registry.setIfAbsent(key, pending, ttl: ttl) else {
            return .heldBy(try await registry.get(key).map(Self.node(of:)) ?? "")
        }
        do {
            let lease = HomeLease(broadcast: broadcast, node: node, generation: try await store.claimHome(broadcast, node: node))
            guard try await registry.replace(key, ifEqualTo: pending, with: lease.token, ttl: ttl) else {
                return .heldBy(try await registry.get(key).map(Self.node(of:)) ?? "")
            }
            return .claimed(lease)
        } catch {
            _ = try? await registry.delete(key, ifEqualTo: pending)
            throw error
        }
    }

    /// Extends the lease; false once it lapsed or went to another node, when the holder
    /// must stop acting as home.
    public func renew(_ lease: HomeLease) async throws -> Bool {
        try await registry.replace(Self.key(lease.broadcast), ifEqualTo: lease.token, with: lease.token, ttl: ttl)
    }

    /// Gives the broadcast up at once (the program ended, or the node drains).
    public func release(_ lease: HomeLease) async throws {
        _ = try await registry.delete(Self.key(lease.broadcast), ifEqualTo: lease.token)
    }

    /// The node whose lease on the broadcast is current, if any.
    public func holder(of broadcast: UUID) async throws -> String? {
        try await registry.get(Self.key(broadcast)).map(Self.node(of:))
    }
}
