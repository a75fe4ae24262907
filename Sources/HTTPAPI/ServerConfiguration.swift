import Foundation
import Ingest
import NetworkPolicy
import Rooms

/// Every setting of a Tally server. Defaults serve one machine with no other servers; each
/// has an environment variable and a `tally` flag (see the README's configuration table).
public struct ServerConfiguration: Sendable {
    public var host = "0.0.0.0"
    public var httpPort = 8080
    public var udpPort = 7882
    public var tcpPort = 7881
    public var rtmpPort = 1935
    public var srtPort = 10080
    /// The node-to-node media relay's UDP port; 0: any free one (reported in `ports.json`
    /// and the node's record, which is how other nodes find it).
    public var relayPort = 0
    /// HTTPS, once a certificate is configured (`TALLY_TLS_CERT` or `TALLY_ACME_DOMAINS`); the
    /// HTTP port then only answers ACME challenges and redirects here.
    public var httpsPort = 8443
    /// PEM certificate chain and key, reloaded when either file changes.
    public var tlsCertificatePath: String?
    public var tlsKeyPath: String?
    /// Names to obtain a certificate for over ACME (HTTP-01 on the HTTP port).
    public var acmeDomains: [String] = []
    public var acmeEmail: String?
    public var acmeDirectory = URL(string: "https://acme-v02.api.letsencrypt.org/directory")!
    /// PEM roots trusted for the ACME directory's own HTTPS besides the system's (a test CA).
    public var acmeDirectoryCA: String?
    /// The scheme and authority clients reach this server by (`https://studio.example.com`),
    /// for invite links, ingest URLs, HLS URLs and WHIP/WHEP `Location`s; nil: as each
    /// request came.
    public var publicURL: String?
    /// Reverse proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    public var trustedProxies: [IPNetwork] = []
    /// The embedded TURN server's UDP and TCP port.
    public var turnPort = 3478
    /// TURN over TLS on a port of its own; nil: on the HTTPS port (when there is a certificate).
    public var turnsPort: Int?
    /// The operator's TURN servers (coturn) instead of the embedded one.
    public var turnURLs: [String] = []
    /// The TURN REST secret (coturn's `static-auth-secret`); nil: derived from the root secret.
    public var turnSecret: String?
    /// How long the TURN credentials handed to a client work.
    public var turnCredentialLifetime: TimeInterval = 12 * 3600
    public var dataDirectory = URL(fileURLWithPath: "data")
    /// nil: SQLite in the data directory.
    public var databaseURL: String?
    /// nil: the in-process registry.
    public var redisURL: String?
    public var redisKeyPrefix = "tally:"
    /// The address announced in ICE candidates; nil: the interfaces' own.
    public var publicIP: String?
    /// nil: a key generated once into the data directory.
    public var secretKey: String?
    /// A folder to serve the browser studio from instead of the copy built into the binary.
    public var webDirectory: URL?
    /// A folder of stage layouts (`*.json`) to use instead of the built-in five; read by the
    /// server and served to the studio.
    public var layoutsDirectory: URL?
    public var accessTokenLifetime: Duration = .seconds(15 * 60)
    public var refreshTokenLifetime: Duration = .seconds(30 * 24 * 3600)
    /// Attempts per client address per minute, for login and for register separately.
    public var authAttemptsPerMinute = 20
    /// bcrypt work factor: 12 in production; tests lower it to stay fast.
    public var passwordHashCost: UInt8 = 12
    public var maxUploadBytes = 10 * 1024 * 1024
    /// How long a studio participant whose socket dropped keeps their place (and media)
    /// before they leave the stage and the room.
    public var signalingResumeGrace: Duration = .seconds(20)
    /// At SIGTERM, how long live programs may go on before they are handed to another node
    /// (none: they stop at once, as they do when no other node is up).
    public var drainTimeout: Duration = .seconds(30)
    /// How long an ingest stream's HLS shows the slate after its publisher drops, waiting
    /// for it to return, before the stream ends.
    public var ingestSlateTimeout: Duration = .seconds(60)
    /// nginx-rtmp's `on_publish`: asked about every publish whose key checks out; 2xx allows.
    public var onPublishURL: String?
    /// Where destinations, relays and the webhook may connect: never loopback, private,
    /// link-local or metadata networks, except those `TALLY_OUTBOUND_ALLOW` lists.
    public var outboundPolicy = OutboundPolicy()
    /// How long a signed HLS URL from `GET /api/hls/{id}` stays valid by default.
    public var hlsURLLifetime: Duration = .seconds(3600)
    /// Helper threads that send large fan-outs with the WebRTC event loop; nil: one fewer than
    /// the CPUs the process may run on (at most 15); 0: none.
    public var fanOutThreads: Int?
    /// Open WebRTC sessions (echo, publishing, playing) one account, invite or stream key may hold.
    public var maxSessionsPerIdentity = 24
    /// Open WebRTC sessions one client address may hold.
    public var maxSessionsPerAddress = 64
    /// Live programs (compositor, encoder, outputs) this node runs at once: one per CPU by default.
    public var maxLivePrograms = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// Live programs one user runs at once.
    public var maxLiveProgramsPerUser = 2
    /// The share of all cores live programs may bring this process to: past it, a new
    /// program is refused (its cost measured on this node). 0: no CPU admission, only the count.
    public var cpuBudget = 0.85
    /// HTTP connections open at once; past it new ones wait in the kernel's backlog.
    public var maxHTTPConnections = 4000
    /// An HTTP connection with no request under way (or a request's head still arriving)
    /// for this long is closed.
    public var httpIdleTimeout: Duration = .seconds(30)
    /// A recording starts, and goes on, only while the data directory's disk has this much free.
    public var recordingMinFreeBytes: Int64 = 1 << 30
    /// A clip in a host's library is at most this large (`TALLY_CLIP_MAX_MB`).
    public var maxClipBytes: Int64 = 500 << 20
    /// A recording stops (as `failed`, keeping what it wrote) at this size.
    public var maxRecordingBytes: Int64 = 50 << 30
    /// The program decodes each guest's smallest simulcast layer that fills their tile;
    /// false: always the top layer (`TALLY_PROGRAM_LAYERS=top`, for comparisons).
    public var programLayersFitTiles = true
    /// Ingest streams one account keeps.
    public var maxStreamsPerUser = 20
    /// An account's streams that may carry a ladder (each transcodes while its encoder publishes).
    public var maxLaddersPerUser = 2
    /// Ladders this node transcodes at once, over all streams; past it a stream is served as it comes.
    public var maxLadders = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// Test hooks such as loss injection on a WHEP session (`?test_egress_loss=`); never in service.
    public var testHooks = false

    public init() {}

    /// HTTPS is served (and plain HTTP redirects to it).
    public var tlsEnabled: Bool { tlsCertificatePath != nil || !acmeDomains.isEmpty }

    public var sqlitePath: String { dataDirectory.appendingPathComponent("tally.sqlite").path }
    public var uploadsDirectory: URL { dataDirectory.appendingPathComponent("uploads") }
    public var recordingsDirectory: URL { dataDirectory.appendingPathComponent("recordings") }
    public var hlsDirectory: URL { dataDirectory.appendingPathComponent("hls") }

    /// Rejects settings that could only fail later, with a message naming the setting.
    public func validate() throws {
        for (name, port) in [("TALLY_HTTP_PORT", httpPort), ("TALLY_UDP_PORT", udpPort), ("TALLY_TCP_PORT", tcpPort),
                             ("TALLY_RTMP_PORT", rtmpPort), ("TALLY_SRT_PORT", srtPort), ("TALLY_RELAY_PORT", relayPort), ("TALLY_HTTPS_PORT", httpsPort),
                             ("TALLY_TURN_PORT", turnPort), ("TALLY_TURNS_PORT", turnsPort ?? 0)] where !(0...65535).contains(port) {
            throw ConfigurationError("\(name) must be between 0 and 65535, not \(port)")
        }
        for (name, limit) in [("TALLY_MAX_SESSIONS_PER_IDENTITY", maxSessionsPerIdentity), ("TALLY_MAX_SESSIONS_PER_ADDRESS", maxSessionsPerAddress)]
        where !(1...2000).contains(limit) {
            throw ConfigurationError("\(name) must be between 1 and 2000, not \(limit)")
        }
        for (name, limit) in [("TALLY_MAX_LIVE_PROGRAMS", maxLivePrograms), ("TALLY_MAX_LIVE_PROGRAMS_PER_USER", maxLiveProgramsPerUser),
                              ("TALLY_MAX_STREAMS_PER_USER", maxStreamsPerUser), ("TALLY_MAX_LADDERS_PER_USER", maxLaddersPerUser), ("TALLY_MAX_LADDERS", maxLadders)]
        where !(0...1000).contains(limit) {
            throw ConfigurationError("\(name) must be between 0 and 1000, not \(limit)")
        }
        guard (1...1_000_000).contains(maxHTTPConnections) else {
            throw ConfigurationError("TALLY_MAX_HTTP_CONNECTIONS must be between 1 and 1000000, not \(maxHTTPConnections)")
        }
        guard recordingMinFreeBytes >= 0, maxRecordingBytes >= 1 << 20 else {
            throw ConfigurationError("TALLY_RECORDING_MIN_FREE_MB must be 0 or more and TALLY_RECORDING_MAX_MB at least 1")
        }
        guard maxClipBytes >= 1 << 20 else { throw ConfigurationError("TALLY_CLIP_MAX_MB must be at least 1") }
        if let fanOutThreads, !(0...64).contains(fanOutThreads) {
            throw ConfigurationError("TALLY_FANOUT_THREADS must be between 0 and 64, not \(fanOutThreads)")
        }
        if let databaseURL, !(databaseURL.hasPrefix("postgres://") || databaseURL.hasPrefix("postgresql://")) {
            throw ConfigurationError("TALLY_DATABASE_URL must start with postgres:// (leave it unset for SQLite)")
        }
        if let redisURL, !redisURL.hasPrefix("redis://") {
            throw ConfigurationError("TALLY_REDIS_URL must start with redis:// (leave it unset for the in-process registry)")
        }
        if let onPublishURL {
            do {
                _ = try OnPublishWebhook(url: onPublishURL, policy: outboundPolicy)
            } catch {
                throw ConfigurationError("TALLY_ON_PUBLISH_URL: \(error.reason)")
            }
        }
        if let publicIP, !Self.isIPAddress(publicIP) {
            throw ConfigurationError("TALLY_PUBLIC_IP must be an IPv4 or IPv6 address, not \(publicIP)")
        }
        guard (tlsCertificatePath == nil) == (tlsKeyPath == nil) else {
            throw ConfigurationError("TALLY_TLS_CERT and TALLY_TLS_KEY go together: set both or neither")
        }
        if tlsCertificatePath != nil, !acmeDomains.isEmpty {
            throw ConfigurationError("set TALLY_TLS_CERT/TALLY_TLS_KEY or TALLY_ACME_DOMAINS, not both")
        }
        for domain in acmeDomains where !Self.isDNSName(domain) {
            throw ConfigurationError("TALLY_ACME_DOMAINS: \(domain) is not a DNS name (ACME certifies names, such as studio.example.com)")
        }
        if let scheme = acmeDirectory.scheme, scheme != "https" {
            throw ConfigurationError("TALLY_ACME_DIRECTORY must be an https:// URL, not \(acmeDirectory)")
        }
        if let publicURL {
            guard let url = URL(string: publicURL), let scheme = url.scheme, scheme == "https" || scheme == "http", url.host != nil,
                  url.path.isEmpty || url.path == "/", url.query == nil, !publicURL.hasSuffix("/") else {
                throw ConfigurationError("TALLY_PUBLIC_URL must be a scheme and host (and port), such as https://studio.example.com, not \(publicURL)")
            }
        }
        for url in turnURLs where !(url.hasPrefix("turn:") || url.hasPrefix("turns:")) {
            throw ConfigurationError("TALLY_TURN_URLS: \(url) is not a turn: or turns: URL")
        }
        if !turnURLs.isEmpty, turnSecret == nil {
            throw ConfigurationError("TALLY_TURN_URLS needs TALLY_TURN_SECRET, the secret the TURN servers check credentials with (coturn's static-auth-secret)")
        }
        if let turnSecret, turnSecret.utf8.count < 16 {
            throw ConfigurationError("TALLY_TURN_SECRET must be at least 16 characters")
        }
        if turnsPort != nil, !tlsEnabled {
            throw ConfigurationError("TALLY_TURNS_PORT needs a certificate (TALLY_TLS_CERT or TALLY_ACME_DOMAINS)")
        }
        if let secretKey, secretKey.utf8.count < 16 {
            throw ConfigurationError("TALLY_SECRET_KEY must be at least 16 characters")
        }
    }

    static func isDNSName(_ text: String) -> Bool {
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        return labels.count >= 2 && text.utf8.count <= 253 && !isIPAddress(text) && labels.allSatisfy { label in
            (1...63).contains(label.count) && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension ServerConfiguration {
    /// What the program director needs of the configuration.
    public var programSettings: ProgramDirector.Settings {
        ProgramDirector.Settings(maxLivePrograms: maxLivePrograms, maxLiveProgramsPerUser: maxLiveProgramsPerUser, recordingsDirectory: recordingsDirectory,
                                 recordingMinFreeBytes: recordingMinFreeBytes, maxRecordingBytes: maxRecordingBytes, hlsDirectory: hlsDirectory,
                                 uploadsDirectory: uploadsDirectory, outbound: outboundPolicy, layersFitTiles: programLayersFitTiles,
                                 cpuBudget: cpuBudget == 0 ? .infinity : cpuBudget * Double(ProcessInfo.processInfo.activeProcessorCount))
    }

    /// What the ingest streams need of the configuration.
    public var ingestSettings: IngestStreams.Settings {
        IngestStreams.Settings(hlsDirectory: hlsDirectory, slateTimeout: ingestSlateTimeout, onPublishURL: onPublishURL, outbound: outboundPolicy, maxLadders: maxLadders)
    }
}
