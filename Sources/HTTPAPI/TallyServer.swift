import Certificates
import DTLS
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Ingest
import Layout
import Logging
import NetworkPolicy
import NIOCore
import NIOPosix
import Registry
import SFU
import Signaling
import Store
import StudioFiles
import TURN
import WebRTCTransport

/// The long-lived pieces behind the HTTP API, opened once and shut down last.
public final class TallyServices: Sendable {
    public let configuration: ServerConfiguration
    public let layouts: LayoutLibrary
    /// Studio participants whose sockets dropped, leaving once their grace period is over.
    let departures = DepartureSchedule()
    /// Studio sockets open per identity and per address.
    let studioSockets = SocketAllowance()
    public let store: Store
    public let registry: any Registry
    public let webrtc: WebRTCServer
    public let sfu: SFU
    let programs: ProgramDirector
    let auth: AuthService
    /// Encoders' streams (RTMP today), their HLS and slate.
    public let ingest: IngestHub
    let whipIngest: WHIPIngest
    let rtmpIngest: RTMPIngestServer
    /// The RTMP listener's own event loop: an encoder's bytes are parsed there, never on the
    /// loops that answer HTTP.
    private static let rtmpLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    /// The WebRTC transport's (and so the SFU's) own event loop, for the same reason: a flood
    /// of datagrams or checks keeps that thread busy, not the ones that answer HTTP.
    private static let mediaLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let srtIngest: SRTIngestServer
    private let ingestWrites: SerialTasks
    let hlsSigner: HLSURLSigner
    let iceServers: ICEServerDirectory
    /// The embedded TURN server; nil when the operator runs their own (`TALLY_TURN_URLS`).
    public let turn: TURNServer?
    /// The HTTPS port as bound, once it listens (for redirects and TURN URLs).
    public let httpsPort: BoundPort
    /// TURN's own event loop: relayed media is copied there, not on the media or HTTP loops.
    private static let turnLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    /// The RTMP port actually bound (the configured one, or the free port picked for 0).
    public let boundRTMPPort: Int
    /// The SRT port actually bound.
    public let boundSRTPort: Int
    let logger: Logger

    private init(configuration: ServerConfiguration, layouts: LayoutLibrary, store: Store, registry: any Registry, webrtc: WebRTCServer,
                 auth: AuthService, ingest: IngestHub, ingestWrites: SerialTasks, rtmpIngest: RTMPIngestServer, boundRTMPPort: Int,
                 srtIngest: SRTIngestServer, boundSRTPort: Int, hlsSigner: HLSURLSigner, iceServers: ICEServerDirectory, turn: TURNServer?,
                 httpsPort: BoundPort, logger: Logger) {
        self.configuration = configuration
        self.layouts = layouts
        self.store = store
        self.registry = registry
        self.webrtc = webrtc
        // The studio's signaling listens on the room channel, on whichever node it runs.
        sfu = SFU(transport: webrtc, logger: logger, onActiveSpeaker: { broadcast, participant in
            guard let event = RoomEvent.activeSpeaker(participant) else { return }
            Task { try? await registry.publishRoomEvent(room: broadcast, event) }
        }, onPublisherLayers: { layers in
            guard let event = RoomEvent.simulcastLayers(layers) else { return }
            Task { try? await registry.publishRoomEvent(room: layers.broadcastID, event) }
        }, onMediaPublished: { broadcast, participant in
            guard let event = RoomEvent.mediaPublished(participant) else { return }
            Task { try? await registry.publishRoomEvent(room: broadcast, event) }
        })
        programs = ProgramDirector(configuration: configuration, layouts: layouts, store: store, registry: registry, sfu: sfu, ingest: ingest, logger: logger)
        self.auth = auth
        self.ingest = ingest
        whipIngest = WHIPIngest(hub: ingest, sfu: sfu, logger: logger)
        self.ingestWrites = ingestWrites
        self.rtmpIngest = rtmpIngest
        self.boundRTMPPort = boundRTMPPort
        self.srtIngest = srtIngest
        self.boundSRTPort = boundSRTPort
        self.hlsSigner = hlsSigner
        self.iceServers = iceServers
        self.turn = turn
        self.httpsPort = httpsPort
        self.logger = logger
    }

    /// Creates the data directory, loads the secret, opens and migrates the store, and
    /// connects the registry (lazily: a Redis that is down now is retried per request).
    /// `certificate`: the HTTPS certificate, which TURN over TLS serves too.
    public static func open(configuration: ServerConfiguration, certificate: ServerCertificate? = nil, logger: Logger) async throws -> TallyServices {
        try configuration.validate()
        // Before anything makes a counter: one made earlier would count into nothing.
        _ = TallyMetrics.registry
        let layouts: LayoutLibrary
        do {
            if let directory = configuration.layoutsDirectory {
                layouts = try LayoutLibrary(directory: directory)
            } else {
                layouts = try LayoutLibrary(files: StudioFiles.files(under: "layouts/").map { ($0.path, $0.contents) }, from: "the built-in layouts")
            }
        } catch {
            throw ConfigurationError("TALLY_LAYOUTS_DIR: \(error.description)")
        }
        let fileManager = FileManager.default
        try fileManager.createDirectory(at: configuration.dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for directory in [configuration.uploadsDirectory, configuration.recordingsDirectory, configuration.hlsDirectory] {
            try fileManager.createDirectory(at: directory, withIntermediateDirectories: true)
        }
        let secret = try MasterSecret.load(configured: configuration.secretKey, dataDirectory: configuration.dataDirectory)
        let location: StoreLocation = configuration.databaseURL.map { .postgres(url: $0) } ?? .sqlite(path: configuration.sqlitePath)
        let group = MultiThreadedEventLoopGroup.singleton
        let store = try Store(location: location, sealer: StreamKeySealer(secret: secret), eventLoopGroup: group, logger: logger)
        do {
            try await store.migrate()
        } catch {
            await store.shutdown()
            throw ConfigurationError("cannot open the database (\(location.logDescription)): \(String(reflecting: error))")
        }
        let registry: any Registry
        if let url = configuration.redisURL {
            let redis = try RedisRegistry(url: url, keyPrefix: configuration.redisKeyPrefix, group: group, logger: logger)
            registry = redis
            logger.info("registry: \(redis.endpoint.logDescription)")
        } else {
            registry = InProcessRegistry()
            logger.info("registry: in-process")
        }
        logger.info("store: \(location.logDescription)")
        let webrtc: WebRTCServer
        do {
            var transport = WebRTCTransportConfiguration()
            transport.host = configuration.host
            transport.udpPort = configuration.udpPort
            transport.tcpPort = configuration.tcpPort
            transport.announcedAddresses = configuration.publicIP.map { [$0] } ?? []
            transport.allowsLossInjection = configuration.testHooks
            transport.fanOutThreads = configuration.fanOutThreads
            transport.maxSessionsPerIdentity = configuration.maxSessionsPerIdentity
            transport.maxSessionsPerAddress = configuration.maxSessionsPerAddress
            webrtc = try WebRTCServer(configuration: transport, certificate: DTLSCertificate(), loop: mediaLoops.next(), logger: logger)
            try await webrtc.start()
        } catch {
            await registry.shutdown()
            await store.shutdown()
            throw ConfigurationError("cannot open the WebRTC ports (UDP \(configuration.udpPort), TCP \(configuration.tcpPort)): \(error)")
        }
        let auth = await AuthService(secret: secret, registry: registry, configuration: configuration, logger: logger)
        logger.info("layouts: \(layouts.layouts.map(\.name).joined(separator: ", "))")
        let ingestWrites = SerialTasks()
        await IngestStreams.recover(store: store, logger: logger)
        let ingest = IngestStreams.hub(configuration: configuration, store: store, writes: ingestWrites, logger: logger)
        let rtmpIngest = RTMPIngestServer(hub: ingest, host: configuration.host, port: configuration.rtmpPort, group: rtmpLoops, logger: logger)
        let boundRTMPPort: Int
        do {
            boundRTMPPort = try await rtmpIngest.start()
            logger.info("rtmp ingest: \(configuration.host):\(boundRTMPPort)")
        } catch {
            await webrtc.stop()
            await registry.shutdown()
            await store.shutdown()
            throw ConfigurationError("cannot open the RTMP port \(configuration.rtmpPort) (TALLY_RTMP_PORT): \(error)")
        }
        // libsrt binds IPv4 here; "listen everywhere" means every IPv4 address.
        let srtHost = configuration.host.contains(":") ? "0.0.0.0" : configuration.host
        let srtIngest = SRTIngestServer(hub: ingest, host: srtHost, port: configuration.srtPort, logger: logger)
        let boundSRTPort: Int
        do {
            boundSRTPort = try srtIngest.start()
            logger.info("srt ingest: \(srtHost):\(boundSRTPort)")
        } catch {
            await rtmpIngest.stop()
            await webrtc.stop()
            await registry.shutdown()
            await store.shutdown()
            throw ConfigurationError("cannot open the SRT port \(configuration.srtPort) (TALLY_SRT_PORT): \(error.reason)")
        }
        let turnSecret = configuration.turnSecret.map { Array($0.utf8) } ?? secret.derivedKey(purpose: "turn-rest").withUnsafeBytes { Array($0) }
        let credentials = TURNCredentials(secret: turnSecret)
        var turn: TURNServer?
        if configuration.turnURLs.isEmpty {
            do {
                turn = try await startTURN(configuration, certificate: certificate, credentials: credentials,
                                           mediaPort: webrtc.boundUDPPort ?? configuration.udpPort, logger: logger)
            } catch {
                srtIngest.stop()
                await rtmpIngest.stop()
                await webrtc.stop()
                await registry.shutdown()
                await store.shutdown()
                throw ConfigurationError("cannot open the TURN port \(configuration.turnPort) (TALLY_TURN_PORT): \(error)")
            }
        }
        let httpsPort = BoundPort(configuration.httpsPort)
        let turnsPort: BoundPort? = configuration.tlsEnabled ? (turn?.boundTLSPort.map(BoundPort.init) ?? httpsPort) : nil
        let iceServers = ICEServerDirectory(credentials: credentials, externalURLs: configuration.turnURLs, turnPort: turn?.boundPort ?? configuration.turnPort,
                                            turnsPort: turnsPort, lifetime: configuration.turnCredentialLifetime)
        let services = TallyServices(configuration: configuration, layouts: layouts, store: store, registry: registry, webrtc: webrtc, auth: auth,
                                     ingest: ingest, ingestWrites: ingestWrites, rtmpIngest: rtmpIngest, boundRTMPPort: boundRTMPPort,
                                     srtIngest: srtIngest, boundSRTPort: boundSRTPort,
                                     hlsSigner: HLSURLSigner(secret: secret), iceServers: iceServers, turn: turn, httpsPort: httpsPort, logger: logger)
        await services.programs.reconcileAfterRestart()
        return services
    }

    /// Tally's own TURN server, relaying only to the WebRTC media port on this host's
    /// addresses (and the announced public one).
    private static func startTURN(_ configuration: ServerConfiguration, certificate: ServerCertificate?, credentials: TURNCredentials,
                                  mediaPort: Int, logger: Logger) async throws -> TURNServer {
        let local = Set(((try? System.enumerateDevices()) ?? []).compactMap { $0.address?.ipBytes })
        let announced = Set(configuration.publicIP.flatMap(IPAddress.bytes(of:)).map { [$0] } ?? [])
        let hostIP = IPAddress.bytes(of: configuration.host).flatMap { $0 == [0, 0, 0, 0] || $0.count != 4 ? nil : $0 } ?? [127, 0, 0, 1]
        let policy = TURNRelayPolicy(ownAddresses: announced, localAddresses: local, mediaPort: UInt16(mediaPort), internalIPv4: hostIP)
        var settings = TURNServer.Configuration()
        settings.host = configuration.host
        settings.port = configuration.turnPort
        settings.tlsPort = configuration.turnsPort
        settings.announcedIPv4 = announced.first { $0.count == 4 }
        let turn = TURNServer(configuration: settings, credentials: credentials, policy: policy, loop: turnLoops.next(),
                              tlsContext: { certificate?.loaded?.context }, logger: logger)
        try await turn.start()
        return turn
    }

    public func shutdown() async {
        await departures.stop()
        await turn?.stop()
        await rtmpIngest.stop()
        srtIngest.stop()
        ingest.shutdown()
        await ingestWrites.drain()
        await programs.stopAll()
        await webrtc.stop()
        await registry.shutdown()
        await store.shutdown()
    }
}

public enum TallyServer {
    /// The HTTP application: every route, the error shape, metrics and the web studio. With
    /// `certificate`, it speaks HTTPS on the HTTPS port.
    public static func application(
        services: TallyServices,
        certificate: ServerCertificate? = nil,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let configuration = services.configuration
        let api = api(services)
        return Application(
            router: try router(api),
            // The studio's signaling socket (/ws) is upgraded from the same port.
            // A connection with no request under way is closed after the idle timeout, and one
            // whose first request does not arrive in time likewise: slow or abandoned
            // clients cannot hold sockets for ever.
            server: HTTPServerBuilder { responder in
                let idle = TimeAmount.seconds(Int64(configuration.httpIdleTimeout.seconds))
                let http = DeadlinedChildChannel(
                    base: HTTP1WebSocketUpgradeChannel(
                        responder: responder,
                        configuration: .init(http1: .init(idleTimeout: idle), ws: .init(maxFrameSize: SignalMessage.maxBytes, closeTimeout: .seconds(2)))
                    ) { request, channel, _ in
                        await api.signalingUpgrade(request, channel: channel)
                    },
                    limits: .init(idle: idle, total: idle * 4, bytes: configuration.maxUploadBytes + (1 << 20)))
                guard let certificate else { return http }
                guard let turn = services.turn else { return ReloadingTLSChannel(base: http, certificate: certificate) }
                return ReloadingTLSChannel(base: TURNMultiplexChannel(base: http, turn: turn), certificate: certificate)
            },
            configuration: .init(address: .hostname(configuration.host, port: certificate == nil ? configuration.httpPort : configuration.httpsPort),
                                 serverName: "Tally", availableConnectionsDelegate: MaximumAvailableConnections(configuration.maxHTTPConnections)),
            onServerRunning: onServerRunning,
            logger: services.logger)
    }

    /// The plain HTTP port beside HTTPS: ACME challenges, and a redirect for everything else.
    public static func redirectApplication(
        configuration: ServerConfiguration,
        httpsPort: BoundPort,
        challenges: ACMEChallenges?,
        logger: Logger,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Hummingbird.Router(context: AppContext.self)
        router.add(middleware: RedirectToHTTPSMiddleware(httpsPort: httpsPort, challenges: challenges))
        let idle = TimeAmount.seconds(Int64(configuration.httpIdleTimeout.seconds))
        return Application(
            router: router,
            server: HTTPServerBuilder { responder in
                DeadlinedChildChannel(base: HTTP1Channel(responder: responder, configuration: .init(idleTimeout: idle)),
                                      limits: .init(idle: idle, total: idle * 4, bytes: 64 << 10))
            },
            configuration: .init(address: .hostname(configuration.host, port: configuration.httpPort), serverName: "Tally",
                                 availableConnectionsDelegate: MaximumAvailableConnections(configuration.maxHTTPConnections)),
            onServerRunning: onServerRunning,
            logger: logger)
    }

    /// The router alone, which tests drive without a socket.
    public static func router(services: TallyServices) throws -> Hummingbird.Router<AppContext> {
        try router(api(services))
    }

    static func api(_ services: TallyServices) -> API {
        API(configuration: services.configuration, layouts: services.layouts, store: services.store, registry: services.registry,
            webrtc: services.webrtc, sfu: services.sfu, programs: services.programs, auth: services.auth, departures: services.departures, studioSockets: services.studioSockets,
            ingest: services.ingest, whipIngest: services.whipIngest, boundRTMPPort: services.boundRTMPPort, boundSRTPort: services.boundSRTPort, hlsSigner: services.hlsSigner,
            iceServers: services.iceServers, logger: services.logger)
    }

    static func router(_ api: API) throws -> Hummingbird.Router<AppContext> {
        let router = Hummingbird.Router(context: AppContext.self)
        router.add(middleware: ForwardedClientMiddleware(trusted: api.configuration.trustedProxies))
        router.add(middleware: SecurityHeadersMiddleware(strictTransport: api.configuration.tlsEnabled))
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: MetricsMiddleware())
        if let web = api.configuration.webDirectory {
            router.add(middleware: FileMiddleware(web.path, searchForIndexHtml: true, logger: api.logger))
        } else {
            router.add(middleware: FileMiddleware(fileProvider: EmbeddedFileProvider(root: "web"), searchForIndexHtml: true))
        }
        router.add(middleware: AuthenticationMiddleware(auth: api.auth))
        _ = TallyMetrics.registry
        api.addSystemRoutes(to: router, startedAt: .now, openAPI: try openAPIDocument())
        api.addAuthRoutes(to: router)
        api.addBroadcastRoutes(to: router)
        api.addDestinationRoutes(to: router)
        api.addDestinationTestRoute(to: router)
        api.addBroadcastDebugRoute(to: router)
        api.addRecordingRoutes(to: router)
        api.addMediaFileRoutes(to: router)
        api.addUploadRoutes(to: router)
        api.addEchoRoutes(to: router)
        api.addICEServerRoutes(to: router)
        api.addWatchRoutes(to: router)
        api.addWHIPRoutes(to: router)
        api.addWHIPIngestRoutes(to: router)
        api.addLayoutRoutes(to: router)
        api.addStageRoutes(to: router)
        api.addStreamRoutes(to: router)
        api.addSignalingRoutes(to: router)
        api.addStudioPages(to: router)
        return router
    }

    static func openAPIDocument() throws -> ByteBuffer {
        guard let document = StudioFiles.file("openapi.yaml") else {
            throw ConfigurationError("the OpenAPI document is missing from the build")
        }
        return ByteBuffer(bytes: document)
    }
}
