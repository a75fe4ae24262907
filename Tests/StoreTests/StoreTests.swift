import Crypto
import FluentKit
import Foundation
import Logging
import NIOPosix
import Store
import Testing

/// Opens a migrated store on the backend under test: a fresh SQLite file, or the PostgreSQL
/// database the test script started.
func withStore(_ body: (Store) async throws -> Void) async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-store-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let location: StoreLocation = ProcessInfo.processInfo.environment["TALLY_TEST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : StoreLocation.postgres(url: $0) }
        ?? .sqlite(path: directory.appendingPathComponent("tally.sqlite").path)
    var logger = Logger(label: "store-test")
    logger.logLevel = .warning
    let store = try Store(
        location: location, sealer: StreamKeySealer(secret: MasterSecret(keyMaterial: SymmetricKey(size: .bits256))),
        eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
    do {
        try await store.migrate()
        try await body(store)
    } catch {
        await store.shutdown()
        throw error
    }
    await store.shutdown()
}

@Suite("Store: migrations and the schema's rules, on the configured database")
struct StoreTests {
    @Test("migrating again is a no-op, and the store answers a ping")
    func migrateTwice() async throws {
        try await withStore { store in
            try await store.migrate()
            try await store.ping()
        }
    }

    @Test("emails are unique at the database level")
    func uniqueEmail() async throws {
        try await withStore { store in
            let email = "unique-\(UUID().uuidString)@example.com"
            try await User(email: email, passwordHash: "x", name: "A").create(on: store.db)
            do {
                try await User(email: email, passwordHash: "y", name: "B").create(on: store.db)
                Issue.record("a duplicate email was stored")
            } catch {
                #expect(error.isConstraintFailure)
            }
        }
    }

    @Test("deleting a broadcast removes its destinations and participants but keeps its recordings")
    func cascade() async throws {
        try await withStore { store in
            let user = User(email: "cascade-\(UUID().uuidString)@example.com", passwordHash: "x", name: "C")
            try await user.create(on: store.db)
            let broadcast = Broadcast(ownerID: user.id!, title: "Show", description: "", settings: .init(layout: "solo"), scheduledAt: nil)
            try await broadcast.create(on: store.db)
            try await Destination(broadcastID: broadcast.id!, platform: "custom", name: "X", rtmpURL: "rtmp://h/app", streamKeySealed: "s", streamKeyHint: "••••").create(on: store.db)
            try await Participant(broadcastID: broadcast.id!, userID: user.id, name: "C", role: .host).create(on: store.db)
            let recording = Recording(broadcastID: broadcast.id, ownerID: user.id!, title: "Show", fileName: "show.mp4")
            try await recording.create(on: store.db)

            let reloaded = try #require(try await Broadcast.find(broadcast.id, on: store.db))
            #expect(reloaded.settings == BroadcastSettings(layout: "solo"))

            try await broadcast.delete(on: store.db)
            #expect(try await Destination.query(on: store.db).filter(\.$broadcastID == broadcast.id!).count() == 0)
            #expect(try await Participant.query(on: store.db).filter(\.$broadcastID == broadcast.id!).count() == 0)
            let kept = try #require(try await Recording.find(recording.id, on: store.db))
            #expect(kept.broadcastID == nil)
        }
    }

    @Test("the Postgres password never reaches the log description")
    func logDescription() {
        #expect(StoreLocation.postgres(url: "postgres://tally:hunter2@db:5432/tally").logDescription == "postgres postgres://tally:***@db:5432/tally")
        #expect(StoreLocation.sqlite(path: "/data/tally.sqlite").logDescription == "sqlite /data/tally.sqlite")
    }
}
