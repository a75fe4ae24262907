import Foundation
import Hummingbird
import Metrics
import NIOCore
import Prometheus
import Store

struct HealthResponse: APIResponse {
    struct Component: Encodable {
        var status: String
        var backend: String
        var error: String?
    }

    var status: String
    var version: String
    var uptimeSeconds: Int
    var store: Component
    var registry: Component
}

/// The process-wide metrics registry; swift-metrics can be bootstrapped once per process.
enum TallyMetrics {
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusMetricsFactory.defaultRegistry
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()
}

extension API {
    static let version = "0.1.0"

    func addSystemRoutes(to router: Router<AppContext>, startedAt: ContinuousClock.Instant, openAPI: ByteBuffer) {
        router.get("api/health") { _, _ in
            async let storeCheck = check { try await store.ping() }
            async let registryCheck = check { try await registry.ping() }
            let (storeError, registryError) = await (storeCheck, registryCheck)
            let healthy = storeError == nil && registryError == nil
            let body = HealthResponse(
                status: healthy ? "ok" : "unavailable", version: Self.version,
                uptimeSeconds: Int((ContinuousClock.now - startedAt).seconds),
                store: .init(status: storeError == nil ? "ok" : "unavailable", backend: configuration.databaseURL == nil ? "sqlite" : "postgres", error: storeError),
                registry: .init(status: registryError == nil ? "ok" : "unavailable", backend: configuration.redisURL == nil ? "in-process" : "redis", error: registryError))
            return EditedResponse(status: healthy ? .ok : .serviceUnavailable, headers: [.cacheControl: "no-store"], response: body)
        }
        let figures = SystemFigures(dataDirectory: configuration.dataDirectory)
        router.get("metrics") { _, _ in
            figures.sample()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: TallyMetrics.registry.emitToBuffer())))
        }
        // Browsers ask for /favicon.ico on pages that name no icon, and some ask anyway.
        router.get("favicon.ico") { _, _ in
            Response(status: .movedPermanently, headers: [.location: "/favicon.svg"])
        }
        router.get("openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml; charset=utf-8", .accessControlAllowOrigin: "*"], body: .init(byteBuffer: openAPI))
        }
    }

    /// nil when `probe` succeeds within two seconds, else a word for what went wrong. The
    /// endpoint needs no credential, so the detail (hosts, paths, driver errors) goes to the
    /// log only.
    private func check(_ probe: @escaping @Sendable () async throws -> Void) async -> String? {
        let logger = self.logger
        return await withTaskGroup(of: String?.self) { group in
            group.addTask {
                do {
                    try await probe()
                    return nil
                } catch {
                    logger.warning("health check failed", metadata: ["error": "\(String(reflecting: error).prefix(500))"])
                    return error.isStoreUnavailable ? "unreachable" : "failing"
                }
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(2))
                return "no answer within 2 s"
            }
            let first = await group.next()!
            group.cancelAll()
            return first
        }
    }
}
