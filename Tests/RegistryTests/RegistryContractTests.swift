import Foundation
import Logging
import NIOPosix
import Registry
import Testing

/// The registries every test runs against: always the in-process one, and Redis when the
/// test script provides one.
enum Backends {
    static let redisURL = ProcessInfo.processInfo.environment["TALLY_TEST_REDIS_URL"].flatMap { $0.isEmpty ? nil : $0 }
    static var names: [String] { redisURL == nil ? ["in-process"] : ["in-process", "redis"] }

    static func make(_ name: String) throws -> any Registry {
        switch name {
        case "redis":
            return try RedisRegistry(url: redisURL!, keyPrefix: "test-\(UUID().uuidString):", group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
        default:
            return InProcessRegistry()
        }
    }
}

@Suite("Registry contract, on every backend")
struct RegistryContractTests {
    @Test("set, get, take, delete", arguments: Backends.names)
    func keyValues(backend: String) async throws {
        let registry = try Backends.make(backend)
        try await registry.set("a", "1", ttl: nil)
        #expect(try await registry.get("a") == "1")
        #expect(try await registry.take("a") == "1")
        #expect(try await registry.take("a") == nil)
        try await registry.set("b", "2", ttl: .seconds(60))
        try await registry.delete("b")
        #expect(try await registry.get("b") == nil)
        await registry.shutdown()
    }

    @Test("a value is replaced or deleted only by whoever knows what it holds", arguments: Backends.names)
    func compareAndSet(backend: String) async throws {
        let registry = try Backends.make(backend)
        #expect(try await registry.setIfAbsent("lease", "node-a:1", ttl: .milliseconds(400)))
        #expect(try await registry.replace("lease", ifEqualTo: "node-b:1", with: "node-b:2", ttl: .seconds(5)) == false)
        #expect(try await registry.delete("lease", ifEqualTo: "node-b:1") == false)
        #expect(try await registry.get("lease") == "node-a:1")
        // The holder renews: the value stays and the deadline moves.
        #expect(try await registry.replace("lease", ifEqualTo: "node-a:1", with: "node-a:1", ttl: .seconds(5)))
        try await Task.sleep(for: .milliseconds(600))
        #expect(try await registry.get("lease") == "node-a:1")
        #expect(try await registry.delete("lease", ifEqualTo: "node-a:1"))
        #expect(try await registry.get("lease") == nil)
        // Nothing to replace once it is gone or lapsed.
        #expect(try await registry.replace("lease", ifEqualTo: "node-a:1", with: "node-a:1", ttl: .seconds(5)) == false)
        try await registry.set("short", "x", ttl: .milliseconds(100))
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await registry.replace("short", ifEqualTo: "x", with: "y", ttl: .seconds(5)) == false)
        #expect(try await registry.get("short") == nil)
        await registry.shutdown()
    }

    @Test("values with a TTL vanish after it", arguments: Backends.names)
    func expiry(backend: String) async throws {
        let registry = try Backends.make(backend)
        try await registry.set("short", "x", ttl: .milliseconds(150))
        #expect(try await registry.get("short") == "x")
        try await Task.sleep(for: .milliseconds(400))
        #expect(try await registry.get("short") == nil)
        await registry.shutdown()
    }

    @Test("setIfAbsent lets exactly one claimant win", arguments: Backends.names)
    func claims(backend: String) async throws {
        let registry = try Backends.make(backend)
        let winners = try await withThrowingTaskGroup(of: Bool.self) { group in
            for node in 0..<8 { group.addTask { try await registry.setIfAbsent("owner", "node-\(node)", ttl: .seconds(30)) } }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(winners == 1)
        let owner = try await registry.claimRoom("room-1", node: "node-a", ttl: .seconds(30))
        #expect(owner == "node-a")
        #expect(try await registry.claimRoom("room-1", node: "node-b", ttl: .seconds(30)) == "node-a")
        await registry.shutdown()
    }

    @Test("counters count within a window and say when it resets", arguments: Backends.names)
    func counters(backend: String) async throws {
        let registry = try Backends.make(backend)
        var last = WindowCount(count: 0, resetsIn: .zero)
        for _ in 0..<5 { last = try await registry.increment("hits", window: .seconds(60)) }
        #expect(last.count == 5)
        #expect(last.resetsIn > .seconds(55) && last.resetsIn <= .seconds(60))
        #expect(try await registry.rateLimit("login", limit: 2, window: .seconds(60)) == nil)
        #expect(try await registry.rateLimit("login", limit: 2, window: .seconds(60)) == nil)
        #expect(try await registry.rateLimit("login", limit: 2, window: .seconds(60)) != nil)
        await registry.shutdown()
    }

    @Test("presence members expire one by one", arguments: Backends.names)
    func presence(backend: String) async throws {
        let registry = try Backends.make(backend)
        try await registry.markPresent(room: "r", participant: "alice", ttl: .seconds(30))
        try await registry.markPresent(room: "r", participant: "bob", ttl: .milliseconds(150))
        #expect(try await registry.present(room: "r") == ["alice", "bob"])
        try await Task.sleep(for: .milliseconds(400))
        #expect(try await registry.present(room: "r") == ["alice"])
        try await registry.markAbsent(room: "r", participant: "alice")
        #expect(try await registry.present(room: "r") == [])
        await registry.shutdown()
    }

    @Test("refresh tokens are single-use", arguments: Backends.names)
    func refreshTokens(backend: String) async throws {
        let registry = try Backends.make(backend)
        try await registry.storeRefreshToken(hash: "h1", userID: "u1", ttl: .seconds(60))
        #expect(try await registry.takeRefreshToken(hash: "h1") == "u1")
        #expect(try await registry.takeRefreshToken(hash: "h1") == nil)
        try await registry.revokeAccessToken(id: "jti", ttl: .seconds(60))
        #expect(try await registry.isAccessTokenRevoked(id: "jti"))
        #expect(try await registry.isAccessTokenRevoked(id: "other") == false)
        await registry.shutdown()
    }

    @Test("room events reach every subscriber of that room only", arguments: Backends.names)
    func pubSub(backend: String) async throws {
        let registry = try Backends.make(backend)
        let first = try await registry.roomEvents(room: "r1")
        let second = try await registry.roomEvents(room: "r1")
        let elsewhere = try await registry.roomEvents(room: "r2")
        // A Redis subscription is confirmed asynchronously; publish until it is heard.
        var firstIterator = first.makeAsyncIterator()
        var secondIterator = second.makeAsyncIterator()
        let publisher = Task {
            for attempt in 0..<50 {
                try await registry.publishRoomEvent(room: "r1", "hello-\(attempt)")
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let heardFirst = await firstIterator.next()
        let heardSecond = await secondIterator.next()
        publisher.cancel()
        #expect(heardFirst?.hasPrefix("hello-") == true)
        #expect(heardSecond?.hasPrefix("hello-") == true)
        try await registry.publishRoomEvent(room: "r2", "only-r2")
        var elsewhereIterator = elsewhere.makeAsyncIterator()
        #expect(await elsewhereIterator.next() == "only-r2")
        await registry.shutdown()
    }
}

@Suite("In-process registry with an injected clock")
struct InProcessRegistryTests {
    final class FakeClock: @unchecked Sendable {
        private let lock = NSLock()
        private var current = ContinuousClock.now
        var now: ContinuousClock.Instant { lock.withLock { current } }
        func advance(_ by: Duration) { lock.withLock { current += by } }
    }

    @Test("expiry follows the injected clock, not the wall clock")
    func injectedTime() async throws {
        let clock = FakeClock()
        let registry = InProcessRegistry(now: { clock.now })
        try await registry.set("k", "v", ttl: .seconds(10))
        _ = try await registry.increment("c", window: .seconds(10))
        clock.advance(.seconds(9))
        #expect(try await registry.get("k") == "v")
        #expect(try await registry.increment("c", window: .seconds(10)) == WindowCount(count: 2, resetsIn: .seconds(1)))
        clock.advance(.seconds(2))
        #expect(try await registry.get("k") == nil)
        #expect(try await registry.increment("c", window: .seconds(10)).count == 1)
        #expect(try await registry.setIfAbsent("k", "again", ttl: .seconds(1)))
    }
}

@Suite("Redis registry without Redis")
struct RedisUnavailableTests {
    @Test("every call fails fast with .unavailable when nothing listens")
    func failsFast() async throws {
        let registry = try RedisRegistry(url: "redis://127.0.0.1:1", group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
        let started = ContinuousClock.now
        await #expect(throws: RegistryError.self) { try await registry.ping() }
        await #expect(throws: RegistryError.self) { try await registry.get("x") }
        // Refused at once rather than waiting out a connect timeout; the bound leaves room for
        // a loaded 2-core machine.
        #expect(ContinuousClock.now - started < .seconds(10))
        await registry.shutdown()
    }

    @Test("URLs are parsed with password and database", arguments: [
        ("redis://localhost", "localhost", 6379, nil, 0),
        ("redis://:s3cret@10.0.0.5:6380/2", "10.0.0.5", 6380, "s3cret", 2),
    ] as [(String, String, Int, String?, Int)])
    func urls(url: String, host: String, port: Int, password: String?, database: Int) throws {
        let endpoint = try RedisRegistry.Endpoint(url: url)
        #expect(endpoint.host == host && endpoint.port == port && endpoint.password == password && endpoint.database == database)
        #expect(!endpoint.logDescription.contains("s3cret"))
    }

    @Test("malformed URLs are refused", arguments: ["http://localhost", "redis://", "redis://host/db"])
    func badURLs(url: String) {
        #expect(throws: RegistryError.self) { try RedisRegistry.Endpoint(url: url) }
    }
}
