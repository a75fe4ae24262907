import Certificates
import Cluster
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Ingest
import Layout
import Logging
import MediaPlane
import NetworkPolicy
import NIOCore
import NIOPosix
import OutboundHTTP
import Registry
import Relay
import Rooms
import SFU
import Signaling
import Store
import StudioFiles
import TURN

/// What the HTTP API serves from: the node's running parts (opened by `TallyNode`), and the
/// API's own state (sign-in, studio sockets).
public final class TallyServices: Sendable {
    public let configuration: ServerConfiguration
    public let layouts: LayoutLibrary
    /// Studio sockets open per identity and per address.
    let studioSockets = SocketAllowance()
    public let store: Store
    public let registry: any Registry
    /// The transport the SFU and the echo test open media sessions on.
    public let transport: any MediaTransport
    public let sfu: SFU
    public let rooms: RoomManager
    public let participantRecordings: ParticipantRecordings
    public let clips: ClipLibrary
    let auth: AuthService
    /// Encoders' streams (RTMP, SRT, WHIP), their HLS and slate.
    public let ingest: IngestHub
    let whipIngest: WHIPIngest
    public let hlsSigner: HLSURLSigner
    let iceServers: ICEServerDirectory
    /// The embedded TURN server; nil when the operator runs their own (`TALLY_TURN_URLS`).
    public let turn: TURNServer?
    /// The HTTPS port as bound, once it listens (for redirects and TURN URLs).
    public let httpsPort: BoundPort
    /// The RTMP port actually bound (the configured one, or the free port picked for 0).
    public let boundRTMPPort: Int
    /// The SRT port actually bound.
    public let boundSRTPort: Int
    /// The deployment's nodes, for operators, and this node's id among them.
    let nodes: NodeDirectory
    let nodeID: String
    let peers: OutboundHTTPClient?
    /// The node-to-node media relay, the way to play media published on another node, and
    /// the token nodes show each other.
    public let relays: RelayHub
    let remoteMedia: RemoteMedia
    let nodeToken: NodeToken
    let logger: Logger

    /// `turnCredentials` sign the TURN URLs the studio is given, for the embedded `turn` or
    /// the operator's own servers.
    public init(configuration: ServerConfiguration, layouts: LayoutLibrary, store: Store, registry: any Registry, secret: MasterSecret,
                transport: any MediaTransport, sfu: SFU, programs: ProgramDirector, ingest: IngestHub, boundRTMPPort: Int, boundSRTPort: Int,
                turn: TURNServer?, turnCredentials: TURNCredentials, nodes: NodeDirectory, nodeID: String,
                relays: RelayHub, remoteMedia: RemoteMedia, nodeToken: NodeToken, logger: Logger) async {
        self.configuration = configuration
        self.layouts = layouts
        self.store = store
        self.registry = registry
        self.transport = transport
        self.sfu = sfu
        rooms = RoomManager(store: store, registry: registry, layouts: layouts, programs: programs, sfu: sfu,
                            resumeGrace: configuration.signalingResumeGrace, logger: logger)
        participantRecordings = ParticipantRecordings(
            store: store, settings: .init(directory: configuration.recordingsDirectory, maxBytes: configuration.maxRecordingBytes,
                                          minFreeBytes: configuration.recordingMinFreeBytes), sfu: sfu, logger: logger)
        clips = ClipLibrary(settings: .init(uploadsDirectory: configuration.uploadsDirectory, maxBytes: configuration.maxClipBytes,
                                            minFreeBytes: configuration.recordingMinFreeBytes), store: store, logger: logger)
        auth = await AuthService(secret: secret, registry: registry, configuration: configuration, logger: logger)
        self.ingest = ingest
        whipIngest = WHIPIngest(hub: ingest, sfu: sfu, logger: logger)
        self.boundRTMPPort = boundRTMPPort
        self.boundSRTPort = boundSRTPort
        hlsSigner = HLSURLSigner(secret: secret)
        self.turn = turn
        let httpsPort = BoundPort(configuration.httpsPort)
        self.httpsPort = httpsPort
        let turnsPort: BoundPort? = configuration.tlsEnabled ? (turn?.boundTLSPort.map(BoundPort.init) ?? httpsPort) : nil
        iceServers = ICEServerDirectory(credentials: turnCredentials, externalURLs: configuration.turnURLs, turnPort: turn?.boundPort ?? configuration.turnPort,
                                        turnsPort: turnsPort, lifetime: configuration.turnCredentialLifetime)
        self.nodes = nodes
        self.nodeID = nodeID
        self.relays = relays
        self.remoteMedia = remoteMedia
        self.nodeToken = nodeToken
        // Segments are 2 s at a few Mb/s; the bound leaves room for a ladder's top rendition.
        peers = try? OutboundHTTPClient(policy: configuration.outboundPolicy.betweenNodes, timeout: .seconds(5), maxResponseBytes: 16 << 20)
        // A program start on another node answers once its program runs: give it time.
        if let peers {
            await programs.place(with: PeerPlacement(directory: nodes, client: peers.with(timeout: .seconds(20), maxResponseBytes: 64 << 10), token: nodeToken))
        }
        self.logger = logger
    }

    /// Stops what runs on behind requests: the departures still waiting for their grace period.
    public func stop() async {
        await rooms.stop()
    }
}

public enum TallyServer {
    /// Sets the metrics backend up; call before anything makes a counter, or it counts into nothing.
    public static func bootstrapMetrics() {
        _ = TallyMetrics.registry
    }

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
            transport: services.transport, sfu: services.sfu, rooms: services.rooms, participantRecordings: services.participantRecordings, clips: services.clips, auth: services.auth, studioSockets: services.studioSockets,
            ingest: services.ingest, whipIngest: services.whipIngest, boundRTMPPort: services.boundRTMPPort, boundSRTPort: services.boundSRTPort, hlsSigner: services.hlsSigner,
            iceServers: services.iceServers, nodes: services.nodes, nodeID: services.nodeID, peers: services.peers,
            relays: services.relays, remoteMedia: services.remoteMedia, nodeToken: services.nodeToken, logger: services.logger)
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
        api.addNodeRoutes(to: router)
        api.addPeerRoutes(to: router)
        api.addAuthRoutes(to: router)
        api.addBroadcastRoutes(to: router)
        api.addDestinationRoutes(to: router)
        api.addDestinationTestRoute(to: router)
        api.addBroadcastDebugRoute(to: router)
        api.addRecordingRoutes(to: router)
        api.addParticipantRecordingRoutes(to: router)
        api.addMediaFileRoutes(to: router)
        api.addUploadRoutes(to: router)
        api.addClipRoutes(to: router)
        api.addSceneRoutes(to: router)
        api.addThemeRoutes(to: router)
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
