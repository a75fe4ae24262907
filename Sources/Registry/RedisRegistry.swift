import Foundation
import Logging
import NIOCore
import Synchronization

/// The multi-node registry on Redis. Every call fails fast with `RegistryError.unavailable`
/// while Redis is away, and the next call after it returns reconnects by itself.
public final class RedisRegistry: Registry {
    public struct Endpoint: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var password: String?
        public var database: Int

        /// `redis://[:password@]host[:port][/db]`
        public init(url: String) throws {
            guard let parts = URLComponents(string: url), parts.scheme == "redis", let host = parts.host, !host.isEmpty else {
                throw RegistryError.unavailable("TALLY_REDIS_URL must look like redis://host:6379/0")
            }
            self.host = host
            port = parts.port ?? 6379
            password = parts.password.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding }
            let path = parts.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            guard path.isEmpty || Int(path) != nil else { throw RegistryError.unavailable("redis database must be a number, not \(path)") }
            database = Int(path) ?? 0
        }

        public var logDescription: String { "redis://\(host):\(port)/\(database)" }
    }

    private enum Link {
        case idle
        case connecting(Task<RESPConnection, any Error>)
        case connected(RESPConnection)
    }

    private struct Subscribers {
        var byChannel: [String: [Int: AsyncStream<String>.Continuation]] = [:]
        var next = 0
        var pushConnection: RESPConnection?
        var loop: Task<Void, Never>?
        var shuttingDown = false
    }

    public let endpoint: Endpoint
    /// Put before every key and channel, so deployments (or test runs) can share one Redis.
    public let keyPrefix: String
    private let group: any EventLoopGroup
    private let logger: Logger
    private let link = Mutex(Link.idle)
    private let subscribers = Mutex(Subscribers())
    private let connectTimeout = TimeAmount.milliseconds(1000)
    private let requestTimeout = TimeAmount.milliseconds(2000)

    public init(url: String, keyPrefix: String = "tally:", group: any EventLoopGroup, logger: Logger) throws {
        endpoint = try Endpoint(url: url)
        self.keyPrefix = keyPrefix
        self.group = group
        self.logger = logger
    }

    // MARK: Registry

    public func set(_ key: String, _ value: String, ttl: Duration?) async throws {
        var arguments = ["SET", keyPrefix + key, value]
        if let ttl { arguments += ["PX", String(ttl.milliseconds)] }
        _ = try await command(arguments)
    }

    public func setIfAbsent(_ key: String, _ value: String, ttl: Duration) async throws -> Bool {
        try await command(["SET", keyPrefix + key, value, "NX", "PX", String(ttl.milliseconds)]) != .bulk(nil)
    }

    public func get(_ key: String) async throws -> String? {
        try await command(["GET", keyPrefix + key]).string
    }

    public func take(_ key: String) async throws -> String? {
        try await command(["GETDEL", keyPrefix + key]).string
    }

    public func delete(_ key: String) async throws {
        _ = try await command(["DEL", keyPrefix + key])
    }

    public func replace(_ key: String, ifEqualTo expected: String, with value: String, ttl: Duration) async throws -> Bool {
        try await command(["EVAL", Scripts.replaceIfEqual, "1", keyPrefix + key, expected, value, String(ttl.milliseconds)]) == .integer(1)
    }

    public func delete(_ key: String, ifEqualTo expected: String) async throws -> Bool {
        try await command(["EVAL", Scripts.deleteIfEqual, "1", keyPrefix + key, expected]) == .integer(1)
    }

    public func increment(_ key: String, window: Duration) async throws -> WindowCount {
        let reply = try await command(["EVAL", Scripts.increment, "1", keyPrefix + key, String(window.milliseconds)])
        guard case .array(let pair?) = reply, pair.count == 2, let count = pair[0].integer, let remaining = pair[1].integer else {
            throw RegistryError.protocolError("unexpected reply to the counter script: \(reply)")
        }
        return WindowCount(count: count, resetsIn: .milliseconds(max(remaining, 0)))
    }

    public func addMember(_ set: String, _ member: String, ttl: Duration) async throws {
        _ = try await command(["EVAL", Scripts.addMember, "1", keyPrefix + set, member, String(ttl.milliseconds)])
    }

    public func removeMember(_ set: String, _ member: String) async throws {
        _ = try await command(["ZREM", keyPrefix + set, member])
    }

    public func members(_ set: String) async throws -> [String] {
        let reply = try await command(["EVAL", Scripts.members, "1", keyPrefix + set])
        guard case .array(let items?) = reply else { throw RegistryError.protocolError("unexpected reply to the members script: \(reply)") }
        return items.compactMap(\.string).sorted()
    }

    public func publish(_ channel: String, _ message: String) async throws {
        _ = try await command(["PUBLISH", keyPrefix + channel, message])
    }

    public func subscribe(_ channel: String) async throws -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(1024))
        let (id, firstOnChannel, connection) = subscribers.withLock { state in
            state.next += 1
            let first = state.byChannel[channel] == nil
            state.byChannel[channel, default: [:]][state.next] = continuation
            if state.loop == nil, !state.shuttingDown { state.loop = Task { await self.runSubscriberLoop() } }
            return (state.next, first, state.pushConnection)
        }
        if firstOnChannel { connection?.sendWithoutReply(["SUBSCRIBE", keyPrefix + channel]) }
        continuation.onTermination = { [weak self] _ in self?.unsubscribe(channel, id: id) }
        return stream
    }

    public func ping() async throws {
        _ = try await command(["PING"])
    }

    public func shutdown() async {
        let (loop, push, listeners) = subscribers.withLock { state in
            state.shuttingDown = true
            defer { state.byChannel = [:] }
            return (state.loop, state.pushConnection, state.byChannel.values.flatMap(\.values))
        }
        loop?.cancel()
        push?.close()
        listeners.forEach { $0.finish() }
        let current = link.withLock { link -> RESPConnection? in
            defer { link = .idle }
            if case .connected(let connection) = link { return connection }
            return nil
        }
        current?.close()
    }

    // MARK: Connection

    private func command(_ arguments: [String]) async throws -> RESPValue {
        let reply = try await connection().send(arguments)
        if case .error(let message) = reply { throw RegistryError.protocolError(message) }
        return reply
    }

    /// The live connection, or a new one; concurrent callers share one attempt.
    private func connection() async throws -> RESPConnection {
        let task: Task<RESPConnection, any Error> = link.withLock { link in
            switch link {
            case .connected(let connection) where connection.isActive:
                return Task { connection }
            case .connecting(let task):
                return task
            default:
                let task = Task { try await self.openConnection(onPush: nil) }
                link = .connecting(task)
                return task
            }
        }
        do {
            let connection = try await task.value
            link.withLock { link in
                if case .connecting = link { link = .connected(connection) }
            }
            connection.closeFuture.whenComplete { [weak self] _ in self?.forget(connection) }
            return connection
        } catch {
            link.withLock { link in
                if case .connecting = link { link = .idle }
            }
            throw error
        }
    }

    private func forget(_ closed: RESPConnection) {
        link.withLock { link in
            if case .connected(let current) = link, current === closed {
                link = .idle
                logger.warning("lost connection to redis", metadata: ["redis": "\(endpoint.logDescription)"])
            }
        }
    }

    private func openConnection(onPush: (@Sendable (RESPValue) -> Void)?) async throws -> RESPConnection {
        let connection = try await RESPConnection.connect(
            host: endpoint.host, port: endpoint.port, group: group,
            connectTimeout: connectTimeout, requestTimeout: requestTimeout, onPush: onPush)
        var setup: [[String]] = []
        if let password = endpoint.password { setup.append(["AUTH", password]) }
        if endpoint.database != 0 { setup.append(["SELECT", String(endpoint.database)]) }
        for arguments in setup {
            // A push connection cannot match replies to requests; a refusal shows up there as
            // channels that never deliver, and in the command connection's error.
            guard onPush == nil else {
                connection.sendWithoutReply(arguments)
                continue
            }
            let reply = try? await connection.send(arguments)
            guard let reply, reply != .bulk(nil), !reply.isError else {
                connection.close()
                throw RegistryError.unavailable("redis refused \(arguments[0])")
            }
        }
        return connection
    }

    // MARK: Subscriptions

    /// Keeps one push connection subscribed to every channel someone listens on, reconnecting
    /// with backoff while Redis is away.
    private func runSubscriberLoop() async {
        var backoff = Duration.milliseconds(250)
        while !Task.isCancelled {
            do {
                let connection = try await openConnection { [weak self] reply in self?.deliver(reply) }
                let channels = subscribers.withLock { state -> [String] in
                    state.pushConnection = connection
                    return state.byChannel.keys.map { self.keyPrefix + $0 }
                }
                if !channels.isEmpty { connection.sendWithoutReply(["SUBSCRIBE"] + channels) }
                backoff = .milliseconds(250)
                try? await connection.closeFuture.get()
                subscribers.withLock { $0.pushConnection = nil }
            } catch {
                logger.debug("redis subscriber connection failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(5))
        }
    }

    private func deliver(_ reply: RESPValue) {
        guard case .array(let parts?) = reply, parts.count == 3, parts[0].string == "message",
              let prefixed = parts[1].string, prefixed.hasPrefix(keyPrefix), let message = parts[2].string else { return }
        let channel = String(prefixed.dropFirst(keyPrefix.count))
        let listeners = subscribers.withLock { Array(($0.byChannel[channel] ?? [:]).values) }
        for listener in listeners { listener.yield(message) }
    }

    private func unsubscribe(_ channel: String, id: Int) {
        let (lastOnChannel, connection) = subscribers.withLock { state in
            state.byChannel[channel]?[id] = nil
            let last = state.byChannel[channel]?.isEmpty == true
            if last { state.byChannel[channel] = nil }
            return (last, state.pushConnection)
        }
        if lastOnChannel { connection?.sendWithoutReply(["UNSUBSCRIBE", keyPrefix + channel]) }
    }
}

/// Lua run inside Redis so each primitive is atomic; Redis's own clock sets deadlines, so
/// nodes with skewed clocks still agree.
private enum Scripts {
    static let increment = """
        local count = redis.call('INCR', KEYS[1])
        if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
        return {count, redis.call('PTTL', KEYS[1])}
        """

    static let addMember = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local ttl = tonumber(ARGV[2])
        redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
        if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
        return 1
        """

    static let replaceIfEqual = """
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
        return 1
        """

    static let deleteIfEqual = """
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[1])
        return 1
        """

    static let members = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        return redis.call('ZRANGE', KEYS[1], 0, -1)
        """
}

extension Duration {
    /// Whole milliseconds, at least one: Redis rejects a zero expiry.
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }
}
