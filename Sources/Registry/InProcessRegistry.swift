import Synchronization

/// The single-node registry: everything in this process's memory, nothing to install.
public final class InProcessRegistry: Registry {
    fileprivate struct Entry {
        var value: String
        var deadline: ContinuousClock.Instant?
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var sets: [String: [String: ContinuousClock.Instant]] = [:]
        var subscribers: [String: [Int: AsyncStream<String>.Continuation]] = [:]
        var nextSubscriber = 0
        var writesSinceSweep = 0

        /// Drops what has expired every so often, so keys nobody reads again (per-address
        /// rate-limit counters) do not pile up.
        mutating func sweepIfDue(at: ContinuousClock.Instant) {
            writesSinceSweep += 1
            guard writesSinceSweep >= 1024 else { return }
            writesSinceSweep = 0
            entries = entries.filter { !InProcessRegistry.expired($0.value, at: at) }
            sets = sets.compactMapValues { members in
                let alive = members.filter { $0.value > at }
                return alive.isEmpty ? nil : alive
            }
        }
    }

    private let state = Mutex(State())
    private let now: @Sendable () -> ContinuousClock.Instant

    /// `now` is injectable so expiry can be tested without waiting.
    public init(now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        self.now = now
    }

    public func set(_ key: String, _ value: String, ttl: Duration?) async throws {
        let at = now()
        state.withLock { state in
            state.sweepIfDue(at: at)
            state.entries[key] = Entry(value: value, deadline: ttl.map { at + $0 })
        }
    }

    public func setIfAbsent(_ key: String, _ value: String, ttl: Duration) async throws -> Bool {
        let at = now()
        return state.withLock { state in
            if let entry = state.entries[key], !Self.expired(entry, at: at) { return false }
            state.entries[key] = Entry(value: value, deadline: at + ttl)
            return true
        }
    }

    public func get(_ key: String) async throws -> String? {
        let at = now()
        return state.withLock { state in Self.live(&state, key, at: at)?.value }
    }

    public func take(_ key: String) async throws -> String? {
        let at = now()
        return state.withLock { state in
            let value = Self.live(&state, key, at: at)?.value
            state.entries[key] = nil
            return value
        }
    }

    public func delete(_ key: String) async throws {
        _ = state.withLock { $0.entries.removeValue(forKey: key) }
    }

    public func replace(_ key: String, ifEqualTo expected: String, with value: String, ttl: Duration) async throws -> Bool {
        let at = now()
        return state.withLock { state in
            guard Self.live(&state, key, at: at)?.value == expected else { return false }
            state.entries[key] = Entry(value: value, deadline: at + ttl)
            return true
        }
    }

    public func delete(_ key: String, ifEqualTo expected: String) async throws -> Bool {
        let at = now()
        return state.withLock { state in
            guard Self.live(&state, key, at: at)?.value == expected else { return false }
            state.entries[key] = nil
            return true
        }
    }

    public func increment(_ key: String, window: Duration) async throws -> WindowCount {
        let at = now()
        return state.withLock { state in
            state.sweepIfDue(at: at)
            var entry = Self.live(&state, key, at: at) ?? Entry(value: "0", deadline: at + window)
            let count = (Int(entry.value) ?? 0) + 1
            entry.value = String(count)
            state.entries[key] = entry
            return WindowCount(count: count, resetsIn: (entry.deadline ?? at) - at)
        }
    }

    public func addMember(_ set: String, _ member: String, ttl: Duration) async throws {
        let at = now()
        state.withLock { state in
            state.sweepIfDue(at: at)
            state.sets[set, default: [:]][member] = at + ttl
        }
    }

    public func removeMember(_ set: String, _ member: String) async throws {
        state.withLock { state in
            state.sets[set]?[member] = nil
            if state.sets[set]?.isEmpty == true { state.sets[set] = nil }
        }
    }

    public func members(_ set: String) async throws -> [String] {
        let at = now()
        return state.withLock { state in
            let alive = (state.sets[set] ?? [:]).filter { $0.value > at }
            state.sets[set] = alive.isEmpty ? nil : alive
            return alive.keys.sorted()
        }
    }

    public func publish(_ channel: String, _ message: String) async throws {
        let listeners = state.withLock { Array(($0.subscribers[channel] ?? [:]).values) }
        for listener in listeners { listener.yield(message) }
    }

    public func subscribe(_ channel: String) async throws -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(1024))
        let id = state.withLock { state in
            state.nextSubscriber += 1
            state.subscribers[channel, default: [:]][state.nextSubscriber] = continuation
            return state.nextSubscriber
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { state in
                state.subscribers[channel]?[id] = nil
                if state.subscribers[channel]?.isEmpty == true { state.subscribers[channel] = nil }
            }
        }
        return stream
    }

    public func ping() async throws {}

    public func shutdown() async {
        let listeners = state.withLock { state in
            defer { state.subscribers = [:] }
            return state.subscribers.values.flatMap(\.values)
        }
        for listener in listeners { listener.finish() }
    }

    fileprivate static func expired(_ entry: Entry, at: ContinuousClock.Instant) -> Bool {
        entry.deadline.map { $0 <= at } ?? false
    }

    private static func live(_ state: inout State, _ key: String, at: ContinuousClock.Instant) -> Entry? {
        guard let entry = state.entries[key] else { return nil }
        if expired(entry, at: at) {
            state.entries[key] = nil
            return nil
        }
        return entry
    }
}
