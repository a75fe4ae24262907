import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// This node's heartbeat: from the moment it serves until it shuts down, its record and
/// load go into the registry every `interval`, living `ttl`; at a graceful shutdown it is
/// withdrawn at once. A registry that fails is logged once per outage, and the beat goes on.
public final class NodeHeartbeat: Service, Sendable {
    public struct Settings: Sendable {
        public var interval: Duration
        /// Long enough to survive a missed beat or two, short enough that a dead node
        /// leaves the list within seconds.
        public var ttl: Duration

        public init(interval: Duration = .seconds(2), ttl: Duration = .seconds(6)) {
            self.interval = interval
            self.ttl = ttl
        }
    }

    public let id: String
    private let startedAt: Date
    private let directory: NodeDirectory
    private let settings: Settings
    private let load: @Sendable () async -> NodeLoad
    private let logger: Logger
    private struct State {
        var url: String?
        var relayHost: String?
        var draining = false
        var failing = false
    }
    private let state = Mutex(State())

    public init(id: String = UUID().uuidString.lowercased(), directory: NodeDirectory, settings: Settings = Settings(),
                logger: Logger, load: @escaping @Sendable () async -> NodeLoad) {
        self.id = id
        startedAt = Date()
        self.directory = directory
        self.settings = settings
        self.load = load
        self.logger = logger
    }

    /// Where the node is reached, once it listens; it is announced at once, and not before.
    /// `relayHost`: the address other nodes send its relays' feedback to.
    public func serving(at url: String, relayHost: String? = nil) {
        state.withLock {
            $0.url = url
            $0.relayHost = relayHost
        }
        Task { await beat() }
    }

    /// The node is shutting down: it says so at once, and at every beat until it withdraws.
    public func markDraining() async {
        state.withLock { $0.draining = true }
        await beat()
    }

    /// Sends one heartbeat now, if the node serves; false when the registry refused it.
    @discardableResult
    public func beat() async -> Bool {
        let (url, relayHost, draining) = state.withLock { ($0.url, $0.relayHost, $0.draining) }
        guard let url else { return true }
        var record = NodeRecord(id: id, url: url, startedAt: startedAt, reportedAt: Date(), draining: draining, load: await load())
        record.relayHost = relayHost
        do {
            try await directory.announce(record, ttl: settings.ttl)
            if state.withLock({ state in defer { state.failing = false }; return state.failing }) {
                logger.info("node heartbeat resumed", metadata: ["node": "\(id)"])
            }
            return true
        } catch {
            if !state.withLock({ state in defer { state.failing = true }; return state.failing }) {
                logger.error("node heartbeat not stored; other nodes will stop seeing this one", metadata: ["node": "\(id)", "error": "\(error)"])
            }
            return false
        }
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.beat()
                try await Task.sleep(for: self.settings.interval)
            }
        }
        state.withLock { $0.draining = true }
        do {
            try await directory.withdraw(id)
            logger.info("node withdrawn from the registry", metadata: ["node": "\(id)"])
        } catch {
            logger.warning("node not withdrawn; its record lapses by itself", metadata: ["node": "\(id)", "error": "\(error)"])
        }
    }
}
