import Certificates
import Cluster
import DTLS
import Foundation
import HTTPAPI
import Ingest
import Layout
import Logging
import NetworkPolicy
import NIOCore
import NIOPosix
import Registry
import Relay
import Rooms
import ServiceLifecycle
import SFU
import Store
import StudioFiles
import Synchronization
import TURN
import WebRTCTransport

/// One Tally node, composed: the store (migrated first), the registry, the WebRTC transport
/// and the SFU over it, ingest (RTMP, SRT, WHIP) with its hub, TURN, the program director,
/// and the HTTP API's services on top. Each long-lived part is a `Service`; run in one
/// `ServiceGroup` after the HTTP servers, they stop in the reverse of the order they
/// opened, HTTP first and the store last.
public final class TallyNode: Sendable {
    /// What the HTTP API serves from.
    public let services: TallyServices
    public let webrtc: WebRTCServer
    /// Tells the registry this node is up and how loaded it is, once it serves.
    public let heartbeat: NodeHeartbeat
    /// Takes over live broadcasts whose home node stopped renewing its claim.
    private let adoption: Repeating
    /// Brings participants the programs here tap, who publish on other nodes, in by relay.
    private let mediaUpkeep: Repeating
    private let drainPart: NodePart

    /// At the graceful shutdown, the node drains its live programs and hands them over:
    /// put it after the HTTP servers in the `ServiceGroup`, so it runs while they still
    /// serve the studios.
    public var drain: any Service { drainPart }
    /// The node's parts in the order they opened; each stops once, whoever asks first.
    private let parts: [NodePart]

    public var configuration: ServerConfiguration { services.configuration }
    public var store: Store { services.store }
    public var registry: any Registry { services.registry }
    public var ingest: IngestHub { services.ingest }
    public var turn: TURNServer? { services.turn }
    public var hlsSigner: HLSURLSigner { services.hlsSigner }
    public var httpsPort: BoundPort { services.httpsPort }
    public var boundRTMPPort: Int { services.boundRTMPPort }
    public var boundSRTPort: Int { services.boundSRTPort }
    public var relays: RelayHub { services.relays }

    /// The RTMP listener's own event loop: an encoder's bytes are parsed there, never on the
    /// loops that answer HTTP.
    private static let rtmpLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    /// The WebRTC transport's (and so the SFU's) own event loop, for the same reason: a flood
    /// of datagrams or checks keeps that thread busy, not the ones that answer HTTP.
    private static let mediaLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    /// TURN's own event loop: relayed media is copied there, not on the media or HTTP loops.
    private static let turnLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    private init(services: TallyServices, webrtc: WebRTCServer, heartbeat: NodeHeartbeat, adoption: Repeating, mediaUpkeep: Repeating,
                 drain: NodePart, parts: [NodePart]) {
        self.services = services
        self.webrtc = webrtc
        self.heartbeat = heartbeat
        self.adoption = adoption
        self.mediaUpkeep = mediaUpkeep
        self.drainPart = drain
        self.parts = parts
    }

    /// Opens every part in order: the data directory and secret, the store (migrated before
    /// anything listens), the registry, the WebRTC ports, ingest, TURN and the programs. A
    /// part that cannot open closes the ones before it and says which setting to look at.
    /// `certificate`: the HTTPS certificate, which TURN over TLS serves too.
    public static func open(configuration: ServerConfiguration, certificate: ServerCertificate? = nil, logger: Logger) async throws -> TallyNode {
        try configuration.validate()
        // Before anything makes a counter: one made earlier would count into nothing.
        TallyServer.bootstrapMetrics()
        let layouts = try loadLayouts(configuration)
        let fileManager = FileManager.default
        try fileManager.createDirectory(at: configuration.dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for directory in [configuration.uploadsDirectory, configuration.recordingsDirectory, configuration.hlsDirectory] {
            try fileManager.createDirectory(at: directory, withIntermediateDirectories: true)
        }
        let secret = try MasterSecret.load(configured: configuration.secretKey, dataDirectory: configuration.dataDirectory)
        var parts: [NodePart] = []
        func failed(_ message: String) async -> ConfigurationError {
            for part in parts.reversed() { await part.stop() }
            return ConfigurationError(message)
        }

        let location: StoreLocation = configuration.databaseURL.map { .postgres(url: $0) } ?? .sqlite(path: configuration.sqlitePath)
        let group = MultiThreadedEventLoopGroup.singleton
        let store = try Store(location: location, sealer: StreamKeySealer(secret: secret), eventLoopGroup: group, logger: logger)
        parts.append(NodePart("store") { await store.shutdown() })
        do {
            try await store.migrate()
        } catch {
            throw await failed("cannot open the database (\(location.logDescription)): \(String(reflecting: error))")
        }
        logger.info("store: \(location.logDescription)")
        let registry: any Registry
        if let url = configuration.redisURL {
            do {
                let redis = try RedisRegistry(url: url, keyPrefix: configuration.redisKeyPrefix, group: group, logger: logger)
                registry = redis
                logger.info("registry: \(redis.endpoint.logDescription)")
            } catch {
                throw await failed("TALLY_REDIS_URL: \(error)")
            }
        } else {
            registry = InProcessRegistry()
            logger.info("registry: in-process")
        }
        parts.append(NodePart("registry") { await registry.shutdown() })

        let webrtc: WebRTCServer
        do {
            webrtc = try WebRTCServer(configuration: transportConfiguration(configuration), certificate: DTLSCertificate(), loop: mediaLoops.next(), logger: logger)
            try await webrtc.start()
        } catch {
            throw await failed("cannot open the WebRTC ports (UDP \(configuration.udpPort), TCP \(configuration.tcpPort)): \(error)")
        }
        parts.append(NodePart("webrtc") { await webrtc.stop() })
        let nodeID = UUID().uuidString.lowercased()
        let locations = PublisherLocations(registry: registry, nodeID: nodeID)
        // The studio's signaling listens on the room channel, on whichever node it runs.
        let sfu = SFU(transport: webrtc, logger: logger, onActiveSpeaker: { broadcast, participant in
            guard let event = RoomEvent.activeSpeaker(participant) else { return }
            Task { try? await registry.publishRoomEvent(room: broadcast, event) }
        }, onPublisherLayers: { layers in
            guard let event = RoomEvent.simulcastLayers(layers) else { return }
            Task { try? await registry.publishRoomEvent(room: layers.broadcastID, event) }
        }, onMediaPublished: { broadcast, participant in
            Task {
                // Where the media is, before the studios hear of it: a player on another node asks for a relay at once.
                await locations.published(broadcastID: broadcast, participantID: participant.rawValue)
                guard let event = RoomEvent.mediaPublished(participant) else { return }
                try? await registry.publishRoomEvent(room: broadcast, event)
            }
        }, onMediaUnpublished: { broadcast, participant in
            Task { await locations.unpublished(broadcastID: broadcast, participantID: participant.rawValue) }
        })
        let relays = RelayHub(sfu: sfu, secret: secret.derivedKey(purpose: "relay"), logger: logger)
        do {
            let port = try await relays.start(host: configuration.host, port: configuration.relayPort)
            logger.info("media relay: \(configuration.host):\(port) (UDP)")
        } catch {
            throw await failed("cannot open the relay port \(configuration.relayPort) (TALLY_RELAY_PORT): \(error)")
        }
        parts.append(NodePart("relay") { await relays.stop() })
        let nodes = NodeDirectory(registry: registry)
        let nodeToken = NodeToken(secret: secret)
        let remoteMedia = RemoteMedia(hub: relays, sfu: sfu, locations: locations, nodes: nodes, token: nodeToken.value,
                                      policy: configuration.outboundPolicy.betweenNodes, logger: logger)

        logger.info("layouts: \(layouts.layouts.map(\.name).joined(separator: ", "))")
        let ingestWrites = SerialTasks()
        await IngestStreams.recover(store: store, logger: logger)
        let ingest = IngestStreams.hub(settings: configuration.ingestSettings, store: store, writes: ingestWrites, logger: logger)
        parts.append(NodePart("ingest") {
            ingest.shutdown()
            await ingestWrites.drain()
        })
        let rtmpIngest = RTMPIngestServer(hub: ingest, host: configuration.host, port: configuration.rtmpPort, group: rtmpLoops, logger: logger)
        let boundRTMPPort: Int
        do {
            boundRTMPPort = try await rtmpIngest.start()
            logger.info("rtmp ingest: \(configuration.host):\(boundRTMPPort)")
        } catch {
            throw await failed("cannot open the RTMP port \(configuration.rtmpPort) (TALLY_RTMP_PORT): \(error)")
        }
        parts.append(NodePart("rtmp") { await rtmpIngest.stop() })
        // libsrt binds IPv4 here; "listen everywhere" means every IPv4 address.
        let srtHost = configuration.host.contains(":") ? "0.0.0.0" : configuration.host
        let srtIngest = SRTIngestServer(hub: ingest, host: srtHost, port: configuration.srtPort, logger: logger)
        let boundSRTPort: Int
        do {
            boundSRTPort = try srtIngest.start()
            logger.info("srt ingest: \(srtHost):\(boundSRTPort)")
        } catch {
            throw await failed("cannot open the SRT port \(configuration.srtPort) (TALLY_SRT_PORT): \(error.reason)")
        }
        parts.append(NodePart("srt") { srtIngest.stop() })

        let turnSecret = configuration.turnSecret.map { Array($0.utf8) } ?? secret.derivedKey(purpose: "turn-rest").withUnsafeBytes { Array($0) }
        let credentials = TURNCredentials(secret: turnSecret)
        var turn: TURNServer?
        if configuration.turnURLs.isEmpty {
            do {
                let started = try await startTURN(configuration, certificate: certificate, credentials: credentials,
                                                  mediaPort: webrtc.boundUDPPort ?? configuration.udpPort, logger: logger)
                turn = started
                parts.append(NodePart("turn") { await started.stop() })
            } catch {
                throw await failed("cannot open the TURN port \(configuration.turnPort) (TALLY_TURN_PORT): \(error)")
            }
        }

        let programs = ProgramDirector(configuration: configuration.programSettings, layouts: layouts, store: store, registry: registry,
                                       homes: HomeLeases(registry: registry, store: store, node: nodeID), sfu: sfu, ingest: ingest, logger: logger)
        let cpu = ProcessCPU()
        let heartbeat = NodeHeartbeat(id: nodeID, directory: nodes, logger: logger) { [programCapacity = configuration.maxLivePrograms] in
            let transports = TransportBoard.totals()
            let share = cpu.sample()
            let programCost = await programs.observeCPU(cores: share * Double(cpu.cores))
            let budget = await programs.cpuBudget
            return NodeLoad(cpu: share, cpus: cpu.cores, livePrograms: await programs.liveCount, programCapacity: programCapacity,
                            publishers: transports.publishers, subscribers: transports.subscribers, egressBitsPerSecond: transports.sendBitsPerSecond,
                            programCost: programCost, cpuBudget: budget.isFinite ? budget : nil)
        }
        let services = await TallyServices(configuration: configuration, layouts: layouts, store: store, registry: registry, secret: secret,
                                           transport: webrtc, sfu: sfu, programs: programs, ingest: ingest, boundRTMPPort: boundRTMPPort,
                                           boundSRTPort: boundSRTPort, turn: turn, turnCredentials: credentials, nodes: nodes,
                                           nodeID: heartbeat.id, relays: relays, remoteMedia: remoteMedia, nodeToken: nodeToken, logger: logger)
        parts.append(NodePart("programs") {
            await services.participantRecordings.finishServerCopies()
            await services.stop()
            await programs.stopAll()
        })
        await programs.reconcileAfterRestart()
        let adoption = Repeating("adopt broadcasts without a home", every: .seconds(3)) { await programs.adoptOrphans() }
        let mediaUpkeep = Repeating("bring tapped participants in from their nodes; keep copies of those publishing here", every: .seconds(1)) {
            await remoteMedia.feedTaps()
            await services.participantRecordings.keepServerCopies()
        }
        let drain = NodePart("drain") { [drainTimeout = configuration.drainTimeout] in
            await heartbeat.markDraining()
            await programs.drain(timeout: drainTimeout) {
                let others = (try? await nodes.nodes()) ?? []
                return others.contains { $0.id != nodeID && !$0.draining }
            }
        }
        return TallyNode(services: services, webrtc: webrtc, heartbeat: heartbeat, adoption: adoption, mediaUpkeep: mediaUpkeep, drain: drain, parts: parts)
    }

    /// The node's parts as services, in the order they opened, then the adoption of homeless
    /// broadcasts and the heartbeat: put them before the HTTP servers in a `ServiceGroup`,
    /// which shuts services down in reverse order, so the node leaves the registry's list and
    /// stops adopting before anything else stops.
    public var serviceParts: [any Service] { parts + [adoption, mediaUpkeep, heartbeat] }

    /// Stops every part not yet stopped, newest first: the programs and the API's own work,
    /// TURN, the ingest listeners, the ingest hub, WebRTC, the registry and last the store.
    public func shutdown() async {
        for part in parts.reversed() { await part.stop() }
    }

    private static func loadLayouts(_ configuration: ServerConfiguration) throws -> LayoutLibrary {
        do {
            if let directory = configuration.layoutsDirectory {
                return try LayoutLibrary(directory: directory)
            }
            return try LayoutLibrary(files: StudioFiles.files(under: "layouts/").map { ($0.path, $0.contents) }, from: "the built-in layouts")
        } catch {
            throw ConfigurationError("TALLY_LAYOUTS_DIR: \(error.description)")
        }
    }

    private static func transportConfiguration(_ configuration: ServerConfiguration) -> WebRTCTransportConfiguration {
        var transport = WebRTCTransportConfiguration()
        transport.host = configuration.host
        transport.udpPort = configuration.udpPort
        transport.tcpPort = configuration.tcpPort
        transport.announcedAddresses = configuration.publicIP.map { [$0] } ?? []
        transport.allowsLossInjection = configuration.testHooks
        transport.fanOutThreads = configuration.fanOutThreads
        transport.maxSessionsPerIdentity = configuration.maxSessionsPerIdentity
        transport.maxSessionsPerAddress = configuration.maxSessionsPerAddress
        return transport
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
}

/// One long-lived part of a node as a `Service`: opened before the group runs, it waits for
/// the group's graceful shutdown and then stops. It stops once, whether the group or
/// `TallyNode.shutdown()` gets there first.
final class NodePart: Service, Sendable {
    let name: String
    private let body: @Sendable () async -> Void
    private let stopping = Mutex<Task<Void, Never>?>(nil)

    init(_ name: String, stop body: @escaping @Sendable () async -> Void) {
        self.name = name
        self.body = body
    }

    func run() async throws {
        // Returns at the group's graceful shutdown, or throws when the group is cancelled:
        // the part stops either way.
        try? await gracefulShutdown()
        await stop()
    }

    func stop() async {
        let task = stopping.withLock { task in
            if task == nil { task = Task { await body() } }
            return task
        }
        await task?.value
    }
}

/// Work done every `interval` while the group runs, until its graceful shutdown.
final class Repeating: Service, Sendable {
    let name: String
    private let interval: Duration
    private let body: @Sendable () async -> Void

    init(_ name: String, every interval: Duration, _ body: @escaping @Sendable () async -> Void) {
        self.name = name
        self.interval = interval
        self.body = body
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: self.interval)
                await self.body()
            }
        }
    }
}
