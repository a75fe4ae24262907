/// Shared, short-lived state that every node of a deployment must agree on: presence, refresh
/// tokens, rate-limit counters, room ownership and per-room events.
///
/// The requirements are a handful of primitives that both backends implement atomically; the
/// domain operations (`Registry+Domain.swift`) are written once on top of them.
public protocol Registry: Sendable {
    /// Stores `value`, replacing any earlier one; it vanishes after `ttl` when one is given.
    func set(_ key: String, _ value: String, ttl: Duration?) async throws
    /// Stores `value` only if `key` is free. Returns whether it was stored.
    func setIfAbsent(_ key: String, _ value: String, ttl: Duration) async throws -> Bool
    func get(_ key: String) async throws -> String?
    /// Reads and deletes in one step, so two callers can never both take the same value.
    func take(_ key: String) async throws -> String?
    func delete(_ key: String) async throws
    /// Sets `key` to `value` for `ttl` only while it holds `expected`, in one step: a lease
    /// is renewed (or changed) only by its holder. Returns whether it was.
    func replace(_ key: String, ifEqualTo expected: String, with value: String, ttl: Duration) async throws -> Bool
    /// Deletes `key` only while it holds `expected`: a holder releases its own lease, never
    /// one that lapsed and went to someone else.
    func delete(_ key: String, ifEqualTo expected: String) async throws -> Bool
    /// Counts one hit in a fixed window that starts with the first hit.
    func increment(_ key: String, window: Duration) async throws -> WindowCount
    /// Adds or refreshes a member of an expiring set; each member has its own deadline.
    func addMember(_ set: String, _ member: String, ttl: Duration) async throws
    func removeMember(_ set: String, _ member: String) async throws
    /// The set's members whose deadline has not passed.
    func members(_ set: String) async throws -> [String]
    func publish(_ channel: String, _ message: String) async throws
    /// Messages published on `channel` from now on, until the stream is dropped.
    func subscribe(_ channel: String) async throws -> AsyncStream<String>
    /// A round trip, for health checks.
    func ping() async throws
    func shutdown() async
}

public struct WindowCount: Sendable, Equatable {
    public var count: Int
    public var resetsIn: Duration

    public init(count: Int, resetsIn: Duration) {
        self.count = count
        self.resetsIn = resetsIn
    }
}

public enum RegistryError: Error, CustomStringConvertible, Equatable {
    /// The backing service cannot be reached; callers answer 503 and try again later.
    case unavailable(String)
    /// The backing service answered something this client does not understand.
    case protocolError(String)

    public var description: String {
        switch self {
        case .unavailable(let why): "registry unavailable: \(why)"
        case .protocolError(let why): "registry protocol error: \(why)"
        }
    }
}
