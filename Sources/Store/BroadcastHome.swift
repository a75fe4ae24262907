import FluentKit
import FluentSQL
import Foundation

/// Which node is a broadcast's home, and the generation of that claim. The claim itself is
/// a lease in the registry; the generation lives here so that a node whose lease lapsed and
/// went to another can never write as the owner again: every owner's write checks it.
public final class BroadcastHome: Model, @unchecked Sendable {
    public static let schema = "broadcast_homes"

    @ID(custom: "broadcast_id", generatedBy: .user) public var id: UUID?
    @Field(key: "node_id") public var nodeID: String
    @Field(key: "generation") public var generation: Int64
    @Field(key: "claimed_at") public var claimedAt: Date

    public init() {}
}

/// A node's write refused because another node has claimed the broadcast since.
public struct FencedOut: Error, CustomStringConvertible, Equatable {
    public var broadcast: UUID
    public var generation: Int64
    public var description: String { "broadcast \(broadcast): claim \(generation) has been superseded" }
}

extension Store {
    /// Claims `broadcast` for `node` with the next generation, in one statement whoever
    /// else claims it at the same moment; returns that generation.
    public func claimHome(_ broadcast: UUID, node: String) async throws -> Int64 {
        guard let sql = db as? any SQLDatabase else { throw FencedOut(broadcast: broadcast, generation: 0) }
        let row = try await sql.raw("""
            INSERT INTO broadcast_homes (broadcast_id, node_id, generation, claimed_at) VALUES (\(bind: broadcast), \(bind: node), 1, \(bind: Date()))
            ON CONFLICT (broadcast_id) DO UPDATE SET generation = broadcast_homes.generation + 1, node_id = excluded.node_id, claimed_at = excluded.claimed_at
            RETURNING generation
            """).first()
        guard let generation = try row?.decode(column: "generation", as: Int64.self) else {
            throw FencedOut(broadcast: broadcast, generation: 0)
        }
        return generation
    }

    /// Runs `body` in a transaction only while `generation` is still `broadcast`'s claim,
    /// and throws `FencedOut` otherwise. On PostgreSQL the claim's row is locked until the
    /// transaction ends, so a newer claim waits for the write instead of slipping past it;
    /// SQLite serves one node, which is alone with its file.
    public func asHome<T: Sendable>(_ broadcast: UUID, generation: Int64, _ body: @escaping @Sendable (any Database) async throws -> T) async throws -> T {
        try await db.transaction { database in
            guard let sql = database as? any SQLDatabase else { throw FencedOut(broadcast: broadcast, generation: generation) }
            let lock: SQLQueryString = if case .postgres = self.location { " FOR UPDATE" } else { "" }
            let row = try await sql.raw("SELECT generation FROM broadcast_homes WHERE broadcast_id = \(bind: broadcast)\(lock)").first()
            guard try row?.decode(column: "generation", as: Int64.self) == generation else {
                throw FencedOut(broadcast: broadcast, generation: generation)
            }
            return try await body(database)
        }
    }
}

struct CreateBroadcastHomes: TableCreation {
    typealias Table = BroadcastHome

    func prepare(on database: any Database) async throws {
        try await database.schema(Table.schema)
            .field("broadcast_id", .uuid, .identifier(auto: false))
            .field("node_id", .string, .required)
            .field("generation", .int64, .required)
            .field("claimed_at", .datetime, .required)
            .create()
    }
}
