import AsyncKit
import FluentKit
import FluentSQL
import FluentPostgresDriver
import FluentSQLiteDriver
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// Where persistent state lives: a SQLite file by default, PostgreSQL when a URL is given.
public enum StoreLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(url: String)

    /// What may be logged: the Postgres password stays out.
    public var logDescription: String {
        switch self {
        case .sqlite(let path):
            return "sqlite \(path)"
        case .postgres(let url):
            guard var parts = URLComponents(string: url) else { return "postgres" }
            if parts.password != nil { parts.password = "***" }
            return "postgres \(parts.string ?? "")"
        }
    }
}

/// The persistence layer: one Fluent model layer over either database, migrated on open.
public final class Store: Sendable {
    public let location: StoreLocation
    public let sealer: StreamKeySealer
    private let databases: Databases
    private let threadPool: NIOThreadPool
    private let logger: Logger

    public init(location: StoreLocation, sealer: StreamKeySealer, eventLoopGroup: any EventLoopGroup, logger: Logger) throws {
        self.location = location
        self.sealer = sealer
        self.logger = logger
        threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
        databases = Databases(threadPool: threadPool, on: eventLoopGroup)
        switch location {
        case .sqlite(let path):
            databases.use(.sqlite(.file(path), sqlLogLevel: .trace), as: .sqlite)
        case .postgres(let url):
            databases.use(try .postgres(url: url, maxConnectionsPerEventLoop: 4, connectionPoolTimeout: .seconds(5), sqlLogLevel: .trace), as: .psql)
        }
    }

    /// A database handle; cheap, make one per request.
    public var db: any Database {
        databases.database(logger: logger, on: databases.eventLoopGroup.any())!
    }

    /// Applies every migration not yet applied; safe to call on every start.
    public func migrate() async throws {
        let migrations = Migrations()
        migrations.add(TallyMigrations.all)
        let migrator = Migrator(databases: databases, migrations: migrations, logger: logger, on: databases.eventLoopGroup.any())
        guard case .postgres = location else {
            try await migrator.setupIfNeeded().get()
            try await migrator.prepareBatch().get()
            return
        }
        // Nodes sharing one PostgreSQL may start together; a session-level advisory lock held
        // on one connection makes the others wait, then find nothing left to do.
        try await db.withConnection { connection in
            let sql = connection as! any SQLDatabase
            try await sql.raw("SELECT pg_advisory_lock(\(literal: Self.migrationLockID))").run()
            do {
                try await migrator.setupIfNeeded().get()
                try await migrator.prepareBatch().get()
            } catch {
                try? await sql.raw("SELECT pg_advisory_unlock(\(literal: Self.migrationLockID))").run()
                throw error
            }
            try await sql.raw("SELECT pg_advisory_unlock(\(literal: Self.migrationLockID))").run()
        }
    }

    /// An arbitrary constant naming Tally's migration lock among the database's advisory locks.
    private static let migrationLockID = 0x7461_6C6C_79

    /// A round trip to the database, for health checks.
    public func ping() async throws {
        guard let sql = db as? any SQLDatabase else { return }
        try await sql.raw("SELECT 1").run()
    }

    public func shutdown() async {
        await databases.shutdownAsync()
        try? await threadPool.shutdownGracefully()
    }
}

extension Error {
    /// The database could not be reached (refused, closed, pool timed out): worth a 503 and
    /// a retry, unlike a bad query.
    public var isStoreUnavailable: Bool {
        switch self {
        case let error as PSQLError:
            [.connectionError, .serverClosedConnection, .clientClosedConnection].contains(error.code)
        case is ConnectionPoolTimeoutError, is ConnectionPoolError, is NIOConnectionError, is ChannelError:
            true
        default:
            false
        }
    }

    /// A unique or foreign-key constraint refused the write, on either database.
    public var isConstraintFailure: Bool {
        (self as? any DatabaseError)?.isConstraintFailure ?? false
    }
}

extension FluentKit.Model {
    /// The row's id for a log line: logs never force an id out of a row.
    public var loggedID: String { id.map { "\($0)" } ?? "unsaved" }
}
