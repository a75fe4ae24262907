// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "tally",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tally", targets: ["tally"]),
        .executable(name: "tally-bench", targets: ["tally-bench"]),
        // The wire codecs, as products so the nested FuzzTesting package can link them.
        .library(name: "STUN", targets: ["STUN"]),
        .library(name: "TURN", targets: ["TURN"]),
        .library(name: "RTP", targets: ["RTP"]),
        .library(name: "RTCP", targets: ["RTCP"]),
        .library(name: "SDP", targets: ["SDP"]),
        .library(name: "DTLS", targets: ["DTLS"]),
        .library(name: "SRTP", targets: ["SRTP"]),
        .library(name: "RTMP", targets: ["RTMP"]),
        .library(name: "FLV", targets: ["FLV"]),
        .library(name: "MediaCodecs", targets: ["MediaCodecs"]),
        .library(name: "Ingest", targets: ["Ingest"]),
        .library(name: "RelayWire", targets: ["RelayWire"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        // The studio's signaling socket (GET /ws): WebSocket upgrade on Hummingbird's own server.
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        // RTMPS pushes to YouTube, Facebook and the like (TLS on the RTMP client).
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/vapor/fluent-kit.git", from: "1.57.0"),
        .package(url: "https://github.com/vapor/fluent-sqlite-driver.git", from: "4.9.0"),
        .package(url: "https://github.com/vapor/fluent-postgres-driver.git", from: "2.14.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        // Already pulled in by the Fluent drivers; named so Store can tell an unreachable
        // database (503) from a failing query (500) by type.
        .package(url: "https://github.com/vapor/async-kit.git", from: "1.22.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CSRTP", pkgConfig: "libsrtp2", providers: [.apt(["libsrtp2-dev"])]),
        .systemLibrary(name: "CVPX", pkgConfig: "vpx", providers: [.apt(["libvpx-dev"])]),
        .systemLibrary(name: "CX264", pkgConfig: "x264", providers: [.apt(["libx264-dev"])]),
        .systemLibrary(name: "COpus", pkgConfig: "opus", providers: [.apt(["libopus-dev"])]),
        .systemLibrary(name: "CFFmpeg", pkgConfig: "libavformat", providers: [.apt(["libavformat-dev", "libavcodec-dev", "libswscale-dev"])]),
        .systemLibrary(name: "CFreeType", pkgConfig: "freetype2", providers: [.apt(["libfreetype-dev"])]),
        .systemLibrary(name: "CSRT", pkgConfig: "srt", providers: [.apt(["libsrt-gnutls-dev"])]),
        .target(
            name: "STUN",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(name: "MediaCore"),
        .target(name: "ICE", dependencies: ["STUN"]),
        // The embedded TURN server (RFC 8656): relays only to Tally's own media port.
        .target(name: "TURN", dependencies: [
            "STUN", "NetworkPolicy", .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        .target(name: "DTLS", dependencies: ["COpenSSL", "MediaCore"]),
        .target(name: "SRTP", dependencies: ["DTLS"]),
        // The node-to-node media relay: UDP on the SFU's loop, sealed with AES-GCM (swift-crypto).
        // The relay's datagrams alone: header, AES-GCM sealing and the replay window.
        .target(name: "RelayWire", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Relay", dependencies: [
            "RelayWire", "SFU", "SDP", "RTP", "RTCP", "Cluster", "NetworkPolicy", "OutboundHTTP",
            .product(name: "Crypto", package: "swift-crypto"), .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        .target(
            name: "WebRTCTransport",
            dependencies: [
                "ICE", "DTLS", "SRTP", "RTP", "RTCP", "SDP", "STUN", "CDatagram", "MediaPlane",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // What the SFU asks of a transport (sessions, sending, fan-out), so it is welded to none.
        .target(name: "MediaPlane", dependencies: ["RTP", "RTCP", "SDP", .product(name: "NIOCore", package: "swift-nio")]),
        .target(name: "RTP", dependencies: ["MediaCore"]),
        .target(name: "RTCP", dependencies: ["MediaCore"]),
        .target(name: "Layout"),
        // Pictures drawn into frames: fills, text (FreeType), images with alpha. Below the
        // compositor, so the ingest slate draws without it.
        .target(name: "Drawing", dependencies: ["MediaCodecs", "CFreeType"]),
        .target(name: "Compositor", dependencies: ["Drawing", "MediaCodecs", "Layout", .product(name: "Metrics", package: "swift-metrics")]),
        .target(name: "FLV"),
        .target(name: "Outputs", dependencies: [
            "MediaCodecs", "RTMP", "FLV", "NetworkPolicy", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "Metrics", package: "swift-metrics"),
        ]),
        // Where Tally may connect on its own (destinations, relays, webhooks): resolved and checked at connect time.
        .target(name: "NetworkPolicy", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        // HTTP/1.1 requests Tally makes on its own (webhooks, ACME), through the outbound policy.
        .target(name: "OutboundHTTP", dependencies: [
            "NetworkPolicy",
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        // HTTPS certificates: PEM files reloaded on change, or obtained and renewed over ACME (RFC 8555).
        .target(name: "Certificates", dependencies: [
            "COpenSSL", "OutboundHTTP",
            .product(name: "Crypto", package: "swift-crypto"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "RTMP"),
        .target(name: "Ingest", dependencies: [
            "Outputs", "MediaCodecs", "Drawing", "RTMP", "FLV", "CSRT", "SFU", "SDP", "RTP", "NetworkPolicy", "OutboundHTTP",
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics"),
        ]),
        .target(name: "MediaCodecs", dependencies: ["CVPX", "CX264", "COpus", "CFFmpeg", "RTP", "MediaCore", "FLV"]),
        .target(name: "SDP"),
        .target(
            name: "SFU",
            dependencies: [
                "MediaPlane", "RTP", "RTCP", "SDP", "MediaCore", "FLV",
                .product(name: "Metrics", package: "swift-metrics"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Store",
            dependencies: [
                .product(name: "FluentKit", package: "fluent-kit"),
                .product(name: "FluentSQL", package: "fluent-kit"),
                .product(name: "FluentSQLiteDriver", package: "fluent-sqlite-driver"),
                .product(name: "FluentPostgresDriver", package: "fluent-postgres-driver"),
                .product(name: "AsyncKit", package: "async-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Registry",
            dependencies: [
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // One broadcast on air: stage feeds in, the compositor, every output and the WHEP players out.
        .target(
            name: "Program",
            dependencies: [
                "SFU", "Compositor", "Drawing", "Outputs", "MediaCodecs", "Layout", "RTMP", "RTP", "SDP", "Ingest", "NetworkPolicy", "FLV",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // The deployment's nodes: heartbeats with their load into the registry.
        .target(
            name: "Cluster",
            dependencies: [
                "Registry", "Store", .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "Rooms",
            dependencies: [
                "Store", "Registry", "Cluster", "SFU", "Program", "Compositor", "Drawing", "Outputs", "MediaCodecs", "Layout", "RTMP", "Ingest", "NetworkPolicy",
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "Signaling"),
        // The studio, the built-in layouts and the API document, built into the binary so
        // `tally` runs from any directory (see Plugins/EmbedFiles).
        .executableTarget(name: "embed-files"),
        .plugin(name: "EmbedFiles", capability: .buildTool(), dependencies: ["embed-files"]),
        .target(name: "StudioFiles", plugins: ["EmbedFiles"]),
        .target(
            name: "HTTPAPI",
            dependencies: [
                "Store", "Registry", "Cluster", "Rooms", "MediaPlane", "SFU", "SDP", "Layout", "Signaling", "Relay",
                "Ingest", "NetworkPolicy", "StudioFiles", "Certificates", "OutboundHTTP", "TURN",
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The composition root: every part of a node opened in order and run as services.
        .target(
            name: "TallyNode",
            dependencies: [
                "HTTPAPI", "Cluster", "Relay", "Rooms", "Ingest", "SFU", "WebRTCTransport", "DTLS", "TURN", "Store", "Registry", "Layout", "NetworkPolicy",
                "StudioFiles", "Certificates",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "tally",
            dependencies: [
                "HTTPAPI", "TallyNode", "NetworkPolicy", "Certificates", "OutboundHTTP", .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The benchmarks' load generator: real WebRTC peers built from Tally's own protocol stack.
        .target(name: "CBenchSocket"),
        .target(name: "CDatagram"),
        .executableTarget(
            name: "tally-bench",
            dependencies: [
                "CBenchSocket", "STUN", "DTLS", "SRTP", "RTP", "RTCP", "SFU", "MediaCore", "Compositor", "Outputs", "MediaCodecs", "Layout", "RTMP", "NetworkPolicy",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "MediaCoreTests", dependencies: ["MediaCore"]),
        .testTarget(name: "STUNTests", dependencies: ["STUN"]),
        .testTarget(name: "ICETests", dependencies: ["ICE"]),
        .testTarget(name: "TURNTests", dependencies: ["TURN", "STUN"]),
        .testTarget(name: "DTLSTests", dependencies: ["DTLS"]),
        .testTarget(name: "SRTPTests", dependencies: ["SRTP", "RTP", "CSRTP"]),
        .testTarget(name: "WebRTCTransportTests", dependencies: ["WebRTCTransport", "DTLS", "ICE", "STUN", "MediaPlane", .product(name: "NIOPosix", package: "swift-nio")]),
        .testTarget(name: "SFUTests", dependencies: ["SFU", "FLV", "MediaCore", "MediaPlane", "SDP", "RTP", "RTCP", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")]),
        .testTarget(name: "RTPTests", dependencies: ["RTP"]),
        .testTarget(name: "RTCPTests", dependencies: ["RTCP"]),
        .testTarget(name: "MediaCodecsTests", dependencies: ["MediaCodecs", "RTP"]),
        .testTarget(name: "NetworkPolicyTests", dependencies: ["NetworkPolicy"]),
        .testTarget(name: "RTMPTests", dependencies: ["RTMP", "FLV", "MediaCodecs", "Outputs", "NetworkPolicy", .product(name: "NIOPosix", package: "swift-nio")]),
        .testTarget(name: "ClusterTests", dependencies: [
            "Cluster", "Registry", "Store", .product(name: "NIOPosix", package: "swift-nio"), .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "FluentKit", package: "fluent-kit"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .testTarget(name: "CompositorTests", dependencies: ["Compositor", "Drawing", "MediaCodecs", "Layout"]),
        .testTarget(name: "OutputsTests", dependencies: ["Outputs", "MediaCodecs"]),
        .testTarget(name: "IngestTests", dependencies: ["Ingest", "RTMP", "FLV", "Outputs", "MediaCodecs", "NetworkPolicy", .product(name: "NIOPosix", package: "swift-nio")]),
        .testTarget(name: "LayoutTests", dependencies: ["Layout"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SignalingTests", dependencies: ["Signaling"]),
        .testTarget(name: "SDPTests", dependencies: ["SDP"], resources: [.copy("Fixtures")]),
        .testTarget(name: "StoreTests", dependencies: ["Store"]),
        .testTarget(name: "RegistryTests", dependencies: ["Registry"]),
        .testTarget(name: "RelayTests", dependencies: [
            "Relay", "RelayWire", "SFU", "SDP", "RTP", "RTCP", "MediaPlane", .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(
            name: "RoomsTests",
            dependencies: [
                "Rooms", "Cluster", "SFU", "Store", "Registry", "MediaPlane", "Ingest", "Layout", "StudioFiles", "RTCP", "SDP",
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "HTTPAPITests",
            dependencies: [
                "HTTPAPI", "TallyNode", "Cluster",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWSTesting", package: "hummingbird-websocket"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
