import Cluster
import Crypto
import FluentKit
import Foundation
import Logging
import NIOPosix
import Registry
import Store
import Testing

/// A store on SQLite, or on the test script's PostgreSQL when it provides one.
private func openStore() async throws -> Store {
    var logger = Logger(label: "home-test")
    logger.logLevel = .critical
    let location: StoreLocation
    if let url = ProcessInfo.processInfo.environment["TALLY_TEST_DATABASE_URL"], !url.isEmpty {
        location = .postgres(url: url)
    } else {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-home-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        location = .sqlite(path: directory.appendingPathComponent("tally.sqlite").path)
    }
    let store = try Store(location: location, sealer: StreamKeySealer(secret: MasterSecret(keyMaterial: SymmetricKey(size: .bits256))),
                          eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
    try await store.migrate()
    return store
}

@Suite("A broadcast's home: a lease fenced by a generation", .serialized)
struct HomeLeaseTests {
    @Test("one node holds a broadcast; another takes it only after the lease lapses, and the first is fenced out", arguments: Registries.names)
    func claimLapseAndFence(backend: String) async throws {
        let registry = try Registries.make(backend)
        let store = try await openStore()
        let broadcast = UUID()
        let first = HomeLeases(registry: registry, store: store, node: "node-a", ttl: .seconds(3))
        // node-b's lease must outlast the rest of the test however slow the machine is.
        let second = HomeLeases(registry: registry, store: store, node: "node-b", ttl: .seconds(60))

        guard case .claimed(let lease) = try await first.claim(broadcast) else { Issue.record("the free broadcast was not claimed"); return }
        #expect(lease.node == "node-a")
        #expect(try await second.claim(broadcast) == .heldBy("node-a"))
        #expect(try await second.holder(of: broadcast) == "node-a")
        #expect(try await first.renew(lease))
        #expect(try await store.asHome(broadcast, generation: lease.generation) { _ in "written" } == "written")

        // node-a stalls past its TTL; node-b takes over with the next generation.
        try await Task.sleep(for: .milliseconds(3500))
        guard case .claimed(let taken) = try await second.claim(broadcast) else { Issue.record("the lapsed broadcast was not taken"); return }
        #expect(taken.generation == lease.generation + 1)
        #expect(try await first.renew(lease) == false)
        await #expect(throws: FencedOut.self) { try await store.asHome(broadcast, generation: lease.generation) { _ in "stale" } }
        #expect(try await store.asHome(broadcast, generation: taken.generation) { _ in "current" } == "current")

        // The stale holder's release does not free what node-b holds; node-b's does.
        try await first.release(lease)
        #expect(try await first.holder(of: broadcast) == "node-b")
        try await second.release(taken)
        #expect(try await first.holder(of: broadcast) == nil)
        await registry.shutdown()
        await store.shutdown()
    }

    @Test("nodes racing for one broadcast: exactly one wins", arguments: Registries.names)
    func race(backend: String) async throws {
        let registry = try Registries.make(backend)
        let store = try await openStore()
        let broadcast = UUID()
        let claims = try await withThrowingTaskGroup(of: HomeClaim.self) { group in
            for index in 0..<6 {
                group.addTask { try await HomeLeases(registry: registry, store: store, node: "node-\(index)").claim(broadcast) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let winners = claims.compactMap { claim -> HomeLease? in
            if case .claimed(let lease) = claim { return lease }
            return nil
        }
        #expect(winners.count == 1)
        #expect(try await HomeLeases(registry: registry, store: store, node: "x").holder(of: broadcast) == winners.first?.node)
        await registry.shutdown()
        await store.shutdown()
    }
}
