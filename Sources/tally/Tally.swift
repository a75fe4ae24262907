import ArgumentParser
import Certificates
import Foundation
import HTTPAPI
import Logging
import NetworkPolicy
import NIOCore
import NIOSSL
import OutboundHTTP
import ServiceLifecycle
import TallyNode

/// `tally`: the whole live studio in one process. Every option also reads its environment
/// variable; a flag wins over the variable, the variable over the default.
@main
struct Tally: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally",
        abstract: "Tally live-studio server: WebRTC studio, SFU, compositor and RTMP/HLS outputs in one process.")

    @Option(help: "Address to listen on (TALLY_HOST, default 0.0.0.0).") var host: String?
    @Option(help: "HTTP port: API, WebSocket, studio, WHIP/WHEP, HLS (TALLY_HTTP_PORT, default 8080; 0 = any free port).") var httpPort: Int?
    @Option(help: "HTTPS port, once a certificate is configured; HTTP then redirects here (TALLY_HTTPS_PORT, default 8443; 0 = any free port).") var httpsPort: Int?
    @Option(help: "PEM certificate chain to serve HTTPS with, reloaded when it changes (TALLY_TLS_CERT; with TALLY_TLS_KEY).") var tlsCert: String?
    @Option(help: "PEM private key of TALLY_TLS_CERT (TALLY_TLS_KEY).") var tlsKey: String?
    @Option(help: "Comma-separated names to obtain a certificate for over ACME, HTTP-01 on the HTTP port (TALLY_ACME_DOMAINS).") var acmeDomains: String?
    @Option(help: "Contact address given to the ACME CA (TALLY_ACME_EMAIL).") var acmeEmail: String?
    @Option(help: "ACME directory URL (TALLY_ACME_DIRECTORY, default Let's Encrypt).") var acmeDirectory: String?
    @Option(help: "PEM roots trusted for the ACME directory's HTTPS besides the system's (TALLY_ACME_DIRECTORY_CA).") var acmeDirectoryCA: String?
    @Option(help: "WebRTC UDP port shared by all peers (TALLY_UDP_PORT, default 7882).") var udpPort: Int?
    @Option(help: "Embedded TURN server, UDP and TCP (TALLY_TURN_PORT, default 3478; 0 = any free port).") var turnPort: Int?
    @Option(help: "TURN over TLS on a port of its own (TALLY_TURNS_PORT; default: on the HTTPS port, with a certificate).") var turnsPort: Int?
    @Option(help: "Comma-separated turn:/turns: URLs of the operator's TURN servers, used instead of the embedded one (TALLY_TURN_URLS).") var turnURLs: String?
    @Option(help: "TURN REST secret the TURN servers check credentials with, coturn's static-auth-secret (TALLY_TURN_SECRET; default: derived from the root secret).") var turnSecret: String?
    @Option(help: "ICE-TCP port (TALLY_TCP_PORT, default 7881).") var tcpPort: Int?
    @Option(help: "RTMP ingest port (TALLY_RTMP_PORT, default 1935).") var rtmpPort: Int?
    @Option(help: "SRT ingest port (TALLY_SRT_PORT, default 10080).") var srtPort: Int?
    @Option(help: "UDP port of the node-to-node media relay (TALLY_RELAY_PORT, default 0: any free port).") var relayPort: Int?
    @Option(help: "Seconds an ingest stream shows its slate after the encoder drops, before HLS ends (TALLY_INGEST_SLATE_SECONDS, default 60).")
    var ingestSlateSeconds: Int?
    @Option(help: "Asked before every ingest publish whose key checks out, as nginx-rtmp's on_publish: 2xx allows (TALLY_ON_PUBLISH_URL).")
    var onPublishURL: String?
    @Option(help: "Networks destinations, relays and the on_publish webhook may reach although private or loopback, comma-separated CIDRs such as 127.0.0.0/8 (TALLY_OUTBOUND_ALLOW; default none).")
    var outboundAllow: String?
    @Option(help: "Helper threads that share a packet's copies to many subscribers with the WebRTC loop, 0-64 (TALLY_FANOUT_THREADS; default: CPUs - 1, at most 15).")
    var fanoutThreads: Int?
    @Option(help: "Open WebRTC sessions one account, invite or stream key may hold (TALLY_MAX_SESSIONS_PER_IDENTITY, default 24).")
    var maxSessionsPerIdentity: Int?
    @Option(help: "Open WebRTC sessions one client address may hold (TALLY_MAX_SESSIONS_PER_ADDRESS, default 64).")
    var maxSessionsPerAddress: Int?
    @Option(help: "Live programs this server runs at once (TALLY_MAX_LIVE_PROGRAMS, default one per CPU).")
    var maxLivePrograms: Int?
    @Option(help: "Live programs one user runs at once (TALLY_MAX_LIVE_PROGRAMS_PER_USER, default 2).")
    var maxLiveProgramsPerUser: Int?
    @Option(help: "Share of all cores live programs may bring this process to, at most 1; past it a new program is refused, its cost measured here; 0 turns this off (TALLY_CPU_BUDGET, default 0.85).")
    var cpuBudget: String?
    @Option(help: "HTTP connections open at once (TALLY_MAX_HTTP_CONNECTIONS, default 4000).")
    var maxHTTPConnections: Int?
    @Option(help: "Seconds an HTTP connection may sit with no request under way (TALLY_HTTP_IDLE_SECONDS, default 30).")
    var httpIdleSeconds: Int?
    @Option(help: "MB a disk must keep free for a recording to start and go on (TALLY_RECORDING_MIN_FREE_MB, default 1024).")
    var recordingMinFreeMB: Int?
    @Option(help: "MB at which a recording stops (TALLY_RECORDING_MAX_MB, default 51200).")
    var recordingMaxMB: Int?
    @Option(help: "MB a clip in a host's library may have (TALLY_CLIP_MAX_MB, default 500).")
    var clipMaxMB: Int?
    @Option(help: "Simulcast layer the program decodes of each guest: fit (the smallest that fills the guest's tile) or top, for comparisons (TALLY_PROGRAM_LAYERS, default fit).")
    var programLayers: String?
    @Option(help: "Ingest streams one account keeps (TALLY_MAX_STREAMS_PER_USER, default 20).")
    var maxStreamsPerUser: Int?
    @Option(help: "An account's ingest streams with a ladder (TALLY_MAX_LADDERS_PER_USER, default 2).")
    var maxLaddersPerUser: Int?
    @Option(help: "Ladders this server transcodes at once (TALLY_MAX_LADDERS, default one per CPU).")
    var maxLadders: Int?
    @Option(help: "Data directory: SQLite file, secret key, uploads, recordings, HLS (TALLY_DATA_DIR, default ./data).") var dataDir: String?
    @Option(help: "PostgreSQL URL postgres://user:pass@host:port/db (TALLY_DATABASE_URL; unset = SQLite).") var databaseURL: String?
    @Option(help: "Redis URL redis://[:pass@]host:port/db (TALLY_REDIS_URL; unset = in-process registry).") var redisURL: String?
    @Option(help: "Prefix of every Redis key (TALLY_REDIS_PREFIX, default tally:).") var redisPrefix: String?
    @Option(help: "IP address announced in ICE candidates (TALLY_PUBLIC_IP).") var publicIP: String?
    @Option(help: "Scheme and host clients reach this server by, e.g. https://studio.example.com: invite links, ingest and HLS URLs, WHIP Locations (TALLY_PUBLIC_URL).") var publicURL: String?
    @Option(help: "Comma-separated CIDRs of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (TALLY_TRUSTED_PROXIES; default none).") var trustedProxies: String?
    @Option(help: "Root secret, 16+ characters (TALLY_SECRET_KEY; unset = generated into the data directory).") var secretKey: String?
    @Option(help: "Folder to serve the web studio from (TALLY_WEB_DIR; default: the studio built into tally).") var webDir: String?
    @Option(help: "Folder of stage layouts, *.json (TALLY_LAYOUTS_DIR; default: the five built into tally).") var layoutsDir: String?
    @Option(help: "Seconds a studio participant whose connection dropped keeps their place (TALLY_RESUME_GRACE_SECONDS, default 20).") var resumeGraceSeconds: Int?
    @Option(help: "At SIGTERM, seconds live programs go on before they are handed to another node, 0-3600 (TALLY_DRAIN_SECONDS, default 30).")
    var drainSeconds: Int?
    @Option(help: "Login/register attempts per client address per minute (TALLY_AUTH_RATE_LIMIT, default 20).") var authRateLimit: Int?
    @Option(help: "bcrypt cost for new password hashes, 4-16 (TALLY_BCRYPT_COST, default 12).") var bcryptCost: Int?
    @Option(help: "trace, debug, info, notice, warning, error or critical (TALLY_LOG_LEVEL, default info).") var logLevel: String?
    @Flag(help: "Print the operator's bearer token for GET /api/nodes (derived from the root secret, the same on every node sharing it) and exit.")
    var operatorToken = false

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        func setting(_ flag: String?, _ name: String) -> String? {
            if let flag { return flag }
            return environment[name].flatMap { $0.isEmpty ? nil : $0 }
        }
        func number(_ flag: Int?, _ name: String, _ fallback: Int) throws -> Int {
            if let flag { return flag }
            guard let text = setting(nil, name) else { return fallback }
            guard let value = Int(text) else { throw ValidationError("\(name) must be a whole number, not \(text)") }
            return value
        }

        let levelText = setting(logLevel, "TALLY_LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: levelText) else { throw ValidationError("unknown log level \(levelText)") }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "tally")

        var config = ServerConfiguration()
        config.host = setting(host, "TALLY_HOST") ?? config.host
        config.httpPort = try number(httpPort, "TALLY_HTTP_PORT", config.httpPort)
        config.httpsPort = try number(httpsPort, "TALLY_HTTPS_PORT", config.httpsPort)
        config.tlsCertificatePath = setting(tlsCert, "TALLY_TLS_CERT")
        config.tlsKeyPath = setting(tlsKey, "TALLY_TLS_KEY")
        config.acmeDomains = (setting(acmeDomains, "TALLY_ACME_DOMAINS") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            .filter { !$0.isEmpty }
        config.acmeEmail = setting(acmeEmail, "TALLY_ACME_EMAIL")
        if let directory = setting(acmeDirectory, "TALLY_ACME_DIRECTORY") {
            guard let url = URL(string: directory), url.host != nil else { throw ValidationError("TALLY_ACME_DIRECTORY must be a URL, not \(directory)") }
            config.acmeDirectory = url
        }
        config.acmeDirectoryCA = setting(acmeDirectoryCA, "TALLY_ACME_DIRECTORY_CA")
        config.udpPort = try number(udpPort, "TALLY_UDP_PORT", config.udpPort)
        config.turnPort = try number(turnPort, "TALLY_TURN_PORT", config.turnPort)
        if turnsPort != nil || setting(nil, "TALLY_TURNS_PORT") != nil { config.turnsPort = try number(turnsPort, "TALLY_TURNS_PORT", 0) }
        config.turnURLs = (setting(turnURLs, "TALLY_TURN_URLS") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        config.turnSecret = setting(turnSecret, "TALLY_TURN_SECRET")
        config.tcpPort = try number(tcpPort, "TALLY_TCP_PORT", config.tcpPort)
        config.rtmpPort = try number(rtmpPort, "TALLY_RTMP_PORT", config.rtmpPort)
        config.srtPort = try number(srtPort, "TALLY_SRT_PORT", config.srtPort)
        config.relayPort = try number(relayPort, "TALLY_RELAY_PORT", config.relayPort)
        config.dataDirectory = URL(fileURLWithPath: setting(dataDir, "TALLY_DATA_DIR") ?? "data")
        config.databaseURL = setting(databaseURL, "TALLY_DATABASE_URL")
        config.redisURL = setting(redisURL, "TALLY_REDIS_URL")
        config.redisKeyPrefix = setting(redisPrefix, "TALLY_REDIS_PREFIX") ?? config.redisKeyPrefix
        config.publicIP = setting(publicIP, "TALLY_PUBLIC_IP")
        config.publicURL = setting(publicURL, "TALLY_PUBLIC_URL")
        if let proxies = setting(trustedProxies, "TALLY_TRUSTED_PROXIES") {
            config.trustedProxies = try proxies.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map { text in
                guard let network = IPNetwork(text) else { throw ValidationError("TALLY_TRUSTED_PROXIES: \(text) is not a CIDR such as 10.0.0.0/8") }
                return network
            }
        }
        config.secretKey = setting(secretKey, "TALLY_SECRET_KEY")
        config.maxSessionsPerIdentity = try number(maxSessionsPerIdentity, "TALLY_MAX_SESSIONS_PER_IDENTITY", config.maxSessionsPerIdentity)
        config.maxSessionsPerAddress = try number(maxSessionsPerAddress, "TALLY_MAX_SESSIONS_PER_ADDRESS", config.maxSessionsPerAddress)
        config.maxLivePrograms = try number(maxLivePrograms, "TALLY_MAX_LIVE_PROGRAMS", config.maxLivePrograms)
        config.maxLiveProgramsPerUser = try number(maxLiveProgramsPerUser, "TALLY_MAX_LIVE_PROGRAMS_PER_USER", config.maxLiveProgramsPerUser)
        if let budget = setting(cpuBudget, "TALLY_CPU_BUDGET") {
            guard let share = Double(budget), share >= 0, share <= 1 else {
                throw ValidationError("TALLY_CPU_BUDGET must be a share of all cores from 0 (off) to 1, such as 0.85; not \(budget)")
            }
            config.cpuBudget = share
        }
        config.maxHTTPConnections = try number(maxHTTPConnections, "TALLY_MAX_HTTP_CONNECTIONS", config.maxHTTPConnections)
        let idle = try number(httpIdleSeconds, "TALLY_HTTP_IDLE_SECONDS", 30)
        guard (1...3600).contains(idle) else { throw ValidationError("TALLY_HTTP_IDLE_SECONDS must be between 1 and 3600") }
        config.httpIdleTimeout = .seconds(idle)
        config.recordingMinFreeBytes = Int64(try number(recordingMinFreeMB, "TALLY_RECORDING_MIN_FREE_MB", 1024)) << 20
        config.maxRecordingBytes = Int64(try number(recordingMaxMB, "TALLY_RECORDING_MAX_MB", 51200)) << 20
        config.maxClipBytes = Int64(try number(clipMaxMB, "TALLY_CLIP_MAX_MB", 500)) << 20
        switch setting(programLayers, "TALLY_PROGRAM_LAYERS") ?? "fit" {
        case "fit": config.programLayersFitTiles = true
        case "top": config.programLayersFitTiles = false
        default: throw ValidationError("TALLY_PROGRAM_LAYERS must be fit or top")
        }
        config.maxStreamsPerUser = try number(maxStreamsPerUser, "TALLY_MAX_STREAMS_PER_USER", config.maxStreamsPerUser)
        config.maxLaddersPerUser = try number(maxLaddersPerUser, "TALLY_MAX_LADDERS_PER_USER", config.maxLaddersPerUser)
        config.maxLadders = try number(maxLadders, "TALLY_MAX_LADDERS", config.maxLadders)
        config.authAttemptsPerMinute = try number(authRateLimit, "TALLY_AUTH_RATE_LIMIT", config.authAttemptsPerMinute)
        let cost = try number(bcryptCost, "TALLY_BCRYPT_COST", Int(config.passwordHashCost))
        guard (4...16).contains(cost) else { throw ValidationError("TALLY_BCRYPT_COST must be between 4 and 16") }
        config.passwordHashCost = UInt8(cost)
        config.testHooks = setting(nil, "TALLY_TEST_HOOKS") == "1"
        if config.testHooks { logger.warning("TALLY_TEST_HOOKS=1: test hooks are on; never use this in service") }
        if let layouts = setting(layoutsDir, "TALLY_LAYOUTS_DIR") { config.layoutsDirectory = URL(fileURLWithPath: layouts) }
        let grace = try number(resumeGraceSeconds, "TALLY_RESUME_GRACE_SECONDS", 20)
        guard (1...600).contains(grace) else { throw ValidationError("TALLY_RESUME_GRACE_SECONDS must be between 1 and 600") }
        config.signalingResumeGrace = .seconds(grace)
        let drain = try number(drainSeconds, "TALLY_DRAIN_SECONDS", 30)
        guard (0...3600).contains(drain) else { throw ValidationError("TALLY_DRAIN_SECONDS must be between 0 and 3600") }
        config.drainTimeout = .seconds(drain)
        let slate = try number(ingestSlateSeconds, "TALLY_INGEST_SLATE_SECONDS", 60)
        guard (1...3600).contains(slate) else { throw ValidationError("TALLY_INGEST_SLATE_SECONDS must be between 1 and 3600") }
        config.ingestSlateTimeout = .seconds(slate)
        if let allow = setting(outboundAllow, "TALLY_OUTBOUND_ALLOW") {
            do {
                config.outboundPolicy = try OutboundPolicy(allowList: allow)
            } catch {
                throw ValidationError("TALLY_OUTBOUND_ALLOW: \(error.reason)")
            }
            logger.notice("outbound connections may reach \(config.outboundPolicy.allowed.map(\.description).joined(separator: ", ")) (TALLY_OUTBOUND_ALLOW)")
        }
        config.onPublishURL = setting(onPublishURL, "TALLY_ON_PUBLISH_URL")
        if fanoutThreads != nil || setting(nil, "TALLY_FANOUT_THREADS") != nil {
            config.fanOutThreads = try number(fanoutThreads, "TALLY_FANOUT_THREADS", 0)
        }
        config.webDirectory = setting(webDir, "TALLY_WEB_DIR").map { URL(fileURLWithPath: $0) }
        do {
            try config.validate()
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }

        let settings = config
        if operatorToken {
            do {
                print(try OperatorToken.load(secretKey: settings.secretKey, dataDirectory: settings.dataDirectory).value)
            } catch {
                throw ValidationError("cannot read the root secret: \(error)")
            }
            return
        }
        let (certificate, certificateService, challenges) = try await Self.certificates(settings, logger: logger)
        let node = try await TallyNode.open(configuration: settings, certificate: certificate, logger: logger)
        let listeners = Listeners(dataDirectory: settings.dataDirectory, expected: certificate == nil ? ["http"] : ["http", "https"], logger: logger) { ports in
            ports["udp"] = node.webrtc.boundUDPPort
            ports["tcp"] = node.webrtc.boundTCPPort
            ports["rtmp"] = node.boundRTMPPort
            ports["srt"] = node.boundSRTPort
            ports["relay"] = node.relays.port
            ports["turn"] = node.turn?.boundPort
            ports["turns"] = node.turn?.boundTLSPort
        } ready: { ports in
            // Other nodes and operators reach this one by its public URL, else by the address it listens on.
            let host = settings.publicIP ?? (settings.host == "0.0.0.0" || settings.host == "::" ? "127.0.0.1" : settings.host)
            let own = ports["https"].map { "https://\(host):\($0)" } ?? "http://\(host):\(ports["http"] ?? 0)"
            node.heartbeat.serving(at: settings.publicURL ?? own, relayHost: settings.publicIP ?? (settings.host == "0.0.0.0" || settings.host == "::" ? nil : settings.host))
        } banner: { ports in
            let shown = settings.host == "0.0.0.0" || settings.host == "::" ? "127.0.0.1" : settings.host
            let base = ports["https"].map { "https://\(shown):\($0)" } ?? "http://\(shown):\(ports["http"] ?? 0)"
            let redirect = ports["https"] == nil ? "" : "  http:    http://\(shown):\(ports["http"] ?? 0) redirects to HTTPS and answers ACME challenges\n"
            return """
                Tally is listening on \(base)
                  studio:  \(base)/
                  health:  \(base)/api/health
                  API doc: \(base)/openapi.yaml
                \(redirect)
                """
        }
        let httpsPort = node.httpsPort
        var servers: [any Service] = node.serviceParts
        servers.append(try TallyServer.application(services: node.services, certificate: certificate) { channel in
            if certificate != nil, let port = channel.localAddress?.port { httpsPort.set(port) }
            await listeners.report(certificate == nil ? "http" : "https", port: channel.localAddress?.port)
        })
        if certificate != nil {
            servers.append(TallyServer.redirectApplication(configuration: settings, httpsPort: httpsPort, challenges: challenges, logger: logger) { channel in
                await listeners.report("http", port: channel.localAddress?.port)
            })
        }
        if let certificateService { servers.append(certificateService) }
        // Last in, first to hear SIGTERM: the node drains while it still serves its studios.
        servers.append(node.drain)
        let group = ServiceGroup(services: servers, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        do {
            try await group.run()
        } catch {
            await node.shutdown()
            throw error
        }
        await node.shutdown()
        logger.info("stopped")
    }

    /// The HTTPS certificate, when one is configured, and what keeps it current: the files'
    /// watcher, or ACME's renewal (with the challenges it publishes on the HTTP port).
    static func certificates(_ settings: ServerConfiguration, logger: Logger) async throws -> (ServerCertificate?, (any Service)?, ACMEChallenges?) {
        if let certificatePath = settings.tlsCertificatePath, let keyPath = settings.tlsKeyPath {
            let certificate = ServerCertificate()
            let files = CertificateFiles(certificatePath: certificatePath, keyPath: keyPath, certificate: certificate, logger: logger)
            do {
                try files.load()
            } catch {
                throw ValidationError("\(error)")
            }
            return (certificate, BackgroundService { await files.watch() }, nil)
        }
        guard !settings.acmeDomains.isEmpty else { return (nil, nil, nil) }
        let roots: [NIOSSLCertificate]
        do {
            roots = try settings.acmeDirectoryCA.map(NIOSSLCertificate.fromPEMFile) ?? []
        } catch {
            throw ValidationError("TALLY_ACME_DIRECTORY_CA: cannot read PEM certificates from \(settings.acmeDirectoryCA ?? ""): \(error)")
        }
        let certificate = ServerCertificate()
        let challenges = ACMEChallenges()
        let acme = try ACMECertificates(
            settings: .init(domains: settings.acmeDomains, email: settings.acmeEmail, directory: settings.acmeDirectory,
                            folder: settings.dataDirectory.appendingPathComponent("acme")),
            http: { try OutboundHTTPClient(policy: settings.outboundPolicy, timeout: .seconds(30), trustedRoots: roots) },
            certificate: certificate, challenges: challenges, logger: logger)
        acme.loadStored()
        return (certificate, BackgroundService { await acme.run() }, challenges)
    }
}

/// The listening ports, written to `ports.json` once every HTTP listener is up, with the
/// banner printed then.
actor Listeners {
    private let file: URL
    private let expected: Set<String>
    private let logger: Logger
    private let addOthers: @Sendable (inout [String: Int]) -> Void
    private let ready: @Sendable ([String: Int]) -> Void
    private let banner: @Sendable ([String: Int]) -> String
    private var ports: [String: Int] = [:]

    init(dataDirectory: URL, expected: Set<String>, logger: Logger, others: @escaping @Sendable (inout [String: Int]) -> Void,
         ready: @escaping @Sendable ([String: Int]) -> Void, banner: @escaping @Sendable ([String: Int]) -> String) {
        file = dataDirectory.appendingPathComponent("ports.json")
        self.expected = expected
        self.logger = logger
        addOthers = others
        self.ready = ready
        self.banner = banner
    }

    func report(_ name: String, port: Int?) {
        ports[name] = port ?? 0
        guard Set(ports.keys).isSuperset(of: expected) else { return }
        var all = ports
        addOthers(&all)
        do {
            let json = try JSONSerialization.data(withJSONObject: all, options: [.sortedKeys])
            try json.write(to: file, options: .atomic)
        } catch {
            logger.error("cannot write \(file.path): \(error)")
        }
        ready(all)
        logger.info("listening", metadata: ["ports": "\(ports)", "ports_file": "\(file.path)"])
        FileHandle.standardOutput.write(Data(banner(all).utf8))
    }
}
