import Cluster
import Foundation
import Logging
import NIOPosix
import Registry
import ServiceLifecycle
import Testing

/// The in-process registry always, and Redis when the test script provides one.
enum Registries {
    static let redisURL = ProcessInfo.processInfo.environment["TALLY_TEST_REDIS_URL"].flatMap { $0.isEmpty ? nil : $0 }
    static var names: [String] { redisURL == nil ? ["in-process"] : ["in-process", "redis"] }

    static func make(_ name: String) throws -> any Registry {
        guard name == "redis", let redisURL else { return InProcessRegistry() }
        return try RedisRegistry(url: redisURL, keyPrefix: "test-\(UUID().uuidString):", group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
    }
}

private func load(programs: Int = 0) -> NodeLoad {
    NodeLoad(cpu: 0.25, cpus: 2, livePrograms: programs, programCapacity: 2, publishers: 3, subscribers: 7, egressBitsPerSecond: 1_500_000,
             programCost: 0.36, cpuBudget: 1.7)
}

private func record(_ id: String, programs: Int = 0) -> NodeRecord {
    NodeRecord(id: id, url: "http://\(id).example:8080", startedAt: Date(timeIntervalSince1970: 1_800_000_000.5),
               reportedAt: Date(timeIntervalSince1970: 1_800_000_002.25), draining: false, load: load(programs: programs))
}

@Suite("Nodes in the registry, on every backend")
struct NodeDirectoryTests {
    @Test("announced nodes are listed as they said, until withdrawn", arguments: Registries.names)
    func announceListWithdraw(backend: String) async throws {
        let registry = try Registries.make(backend)
        let directory = NodeDirectory(registry: registry)
        #expect(try await directory.nodes().isEmpty)
        try await directory.announce(record("b", programs: 1), ttl: .seconds(30))
        try await directory.announce(record("a"), ttl: .seconds(30))
        #expect(try await directory.nodes() == [record("a"), record("b", programs: 1)])
        try await directory.announce(record("b", programs: 2), ttl: .seconds(30))
        #expect(try await directory.nodes().last?.load.livePrograms == 2)
        try await directory.withdraw("a")
        #expect(try await directory.nodes().map(\.id) == ["b"])
        await registry.shutdown()
    }

    @Test("a node that stops beating drops out after its TTL", arguments: Registries.names)
    func lapse(backend: String) async throws {
        let registry = try Registries.make(backend)
        let directory = NodeDirectory(registry: registry)
        try await directory.announce(record("short"), ttl: .milliseconds(300))
        try await directory.announce(record("long"), ttl: .seconds(30))
        #expect(try await directory.nodes().count == 2)
        try await Task.sleep(for: .milliseconds(700))
        #expect(try await directory.nodes().map(\.id) == ["long"])
        await registry.shutdown()
    }

    @Test("the heartbeat announces only once the node serves, and withdraws it at a graceful shutdown")
    func heartbeat() async throws {
        let registry = InProcessRegistry()
        let directory = NodeDirectory(registry: registry)
        let beat = NodeHeartbeat(id: "n1", directory: directory, settings: .init(interval: .milliseconds(50), ttl: .seconds(5)),
                                 logger: Logger(label: "test")) { load(programs: 1) }
        let group = ServiceGroup(services: [beat], logger: Logger(label: "test"))
        let running = Task { try await group.run() }
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await directory.nodes().isEmpty, "announced before it served")
        beat.serving(at: "http://10.0.0.1:8080")
        var listed: [NodeRecord] = []
        for _ in 0..<40 where listed.isEmpty {
            try await Task.sleep(for: .milliseconds(50))
            listed = try await directory.nodes()
        }
        let node = try #require(listed.first)
        #expect(node.id == "n1" && node.url == "http://10.0.0.1:8080" && node.load.livePrograms == 1 && !node.draining)
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(try await directory.nodes().isEmpty, "still listed after shutting down")
    }

    @Test("a failing registry does not stop the heartbeat")
    func heartbeatSurvivesARegistryOutage() async throws {
        let registry = try RedisRegistry(url: "redis://127.0.0.1:1", keyPrefix: "x:", group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
        let beat = NodeHeartbeat(directory: NodeDirectory(registry: registry), logger: Logger(label: "test")) { load() }
        beat.serving(at: "http://10.0.0.1:8080")
        #expect(await beat.beat() == false)
        #expect(await beat.beat() == false)
        await registry.shutdown()
    }

    @Test("process CPU is a share of the machine's cores")
    func processCPU() {
        let cpu = ProcessCPU()
        #expect(cpu.sample() == 0)
        var spin = 0.0
        for index in 0..<2_000_000 { spin += Double(index).squareRoot() }
        #expect(spin > 0)
        let share = cpu.sample()
        #expect(share > 0 && share <= 1)
    }
}
