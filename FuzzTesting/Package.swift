// swift-tools-version:6.1
// libFuzzer targets for every parser of network bytes. Build and run with scripts/fuzz.
import PackageDescription

let package = Package(
    name: "TallyFuzz",
    dependencies: [
        .package(name: "tally", path: ".."),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
    ],
    targets: [
        .systemLibrary(name: "CLibFuzzer"),
        // SwiftPM owns each executable's main(); FuzzDriver hands it over to libFuzzer.
        .target(name: "FuzzDriver", dependencies: ["CLibFuzzer"]),
        .executableTarget(name: "FuzzSTUN", dependencies: ["FuzzDriver", .product(name: "STUN", package: "tally")]),
        .executableTarget(name: "FuzzRTP", dependencies: ["FuzzDriver", .product(name: "RTP", package: "tally")]),
        .executableTarget(name: "FuzzRTCP", dependencies: ["FuzzDriver", .product(name: "RTCP", package: "tally")]),
        .executableTarget(name: "FuzzSDP", dependencies: ["FuzzDriver", .product(name: "SDP", package: "tally")]),
        .executableTarget(name: "FuzzDTLS", dependencies: ["FuzzDriver", .product(name: "DTLS", package: "tally")]),
        .executableTarget(
            name: "FuzzSRTP",
            dependencies: ["FuzzDriver", .product(name: "SRTP", package: "tally"), .product(name: "DTLS", package: "tally")]
        ),
        .executableTarget(name: "FuzzTURN", dependencies: ["FuzzDriver", .product(name: "TURN", package: "tally"), .product(name: "STUN", package: "tally")]),
        .executableTarget(name: "FuzzRTMP", dependencies: ["FuzzDriver", .product(name: "RTMP", package: "tally")]),
        .executableTarget(name: "FuzzRelay", dependencies: [
            "FuzzDriver", .product(name: "RelayWire", package: "tally"), .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .executableTarget(name: "FuzzFLV", dependencies: ["FuzzDriver", .product(name: "FLV", package: "tally")]),
        .executableTarget(name: "FuzzClip", dependencies: ["FuzzDriver", .product(name: "MediaCodecs", package: "tally")]),
        .executableTarget(
            name: "FuzzMPEGTS",
            dependencies: ["FuzzDriver", .product(name: "Ingest", package: "tally"), .product(name: "MediaCodecs", package: "tally")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
