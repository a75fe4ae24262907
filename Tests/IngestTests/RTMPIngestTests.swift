import FLV
import Foundation
import Logging
import MediaCodecs
import NIOPosix
import RTMP
import Testing

@testable import Ingest

/// Our own RTMP client publishes to the ingest server on loopback.
@Suite(.serialized) struct RTMPIngestTests {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("tally-ingest-\(UUID().uuidString)")

    func makeServer(slateTimeout: Duration = .seconds(60)) async throws -> (IngestHub, RTMPIngestServer, Int) {
        let hub = IngestHub(hlsRoot: root, slateTimeout: slateTimeout, logger: Logger(label: "test")) { request in
            request.streamKey == "good-key" ? .allow(streamID: "show") : .deny("unknown stream key")
        }
        hub.start("show")
        let server = RTMPIngestServer(hub: hub, host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
        let port = try await server.start()
        return (hub, server, port)
    }

    /// Publishes `seconds` of 320×240 video (a keyframe each second) and AAC, as fast as it can.
    func publish(port: Int, key: String = "good-key", seconds: Int, keepOpen: Bool = false) async throws -> RTMPPushConnection {
        let endpoint = try RTMPEndpoint(url: "rtmp://127.0.0.1:\(port)/live", streamKey: key)
        let connection = try await RTMPPushConnection.open(endpoint, group: MultiThreadedEventLoopGroup.singleton)
        let video = try H264Encoder(.init(width: 320, height: 240, framesPerSecond: 30, bitrateKbps: 300, keyframeIntervalSeconds: 1, threads: 1))
        let audio = try AACEncoder()
        connection.sendMetadata([("width", .number(320)), ("height", .number(240)), ("framerate", .number(30))])
        connection.send(.video, timestamp: 0, body: try FLVVideo.avcSequenceHeader(parameterSets: video.parameterSets))
        connection.send(.audio, timestamp: 0, body: FLVAudio.aacSequenceHeader(audioSpecificConfig: audio.audioSpecificConfig))
        var picture = VideoFrame(width: 320, height: 240, fill: (y: 80, u: 90, v: 200))
        for index in 0..<(seconds * 30) {
            if let packet = try video.encode(&picture, pts: Int64(index) * 33_333) {
                connection.send(.video, timestamp: UInt32(packet.dts / 1000), body: FLVVideo.avcFrame(annexB: packet.data, keyframe: packet.isKeyframe))
            }
            for packet in try audio.encode([Float](repeating: 0, count: 3200)) {
                connection.send(.audio, timestamp: UInt32(packet.pts / 1000), body: FLVAudio.aacFrame(packet.data))
            }
        }
        if !keepOpen { await connection.close() }
        return connection
    }

    func playlist() -> String {
        (try? String(contentsOf: root.appendingPathComponent("show/index.m3u8"), encoding: .utf8)) ?? ""
    }

    func waitFor(_ what: String, timeout: Duration = .seconds(10), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting for \(what)")
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    @Test func aWrongKeyIsRefusedBeforeAnyMedia() async throws {
        let (hub, server, port) = try await makeServer()
        defer { Task { await server.stop() } }
        let endpoint = try RTMPEndpoint(url: "rtmp://127.0.0.1:\(port)/live", streamKey: "bad-key")
        await #expect { try await RTMPPushConnection.open(endpoint, group: MultiThreadedEventLoopGroup.singleton) } throws: { error in
            guard case .rejected(let why) = error as? RTMPPushError else { return false }
            return why.contains("unknown stream key")
        }
        #expect(hub.stream("show")?.snapshot.publishers == 0)
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("show").path))
    }

    @Test func passthroughHLSKeepsOneClockThroughTheSlateAndBack() async throws {
        let (hub, server, port) = try await makeServer(slateTimeout: .seconds(5))
        defer { Task { await server.stop() } }
        _ = try await publish(port: port, seconds: 5)
        // Gone: the slate takes over and its first segment is a discontinuity.
        try await waitFor("the slate") { playlist().contains("#EXT-X-DISCONTINUITY") }
        #expect(hub.stream("show")?.snapshot.slateShowing == true)
        #expect(hub.stream("show")?.snapshot.status == .running)
        _ = try await publish(port: port, seconds: 5)
        try await waitFor("the publisher's return") { playlist().components(separatedBy: "#EXT-X-DISCONTINUITY\n").count >= 3 }
        #expect(playlist().split(separator: "\n").filter { $0.hasSuffix(".ts") }.count >= 4)
        // Ten seconds of publishing plus the slate between: the one clock ran on through all of it.
        #expect((hub.stream("show")?.snapshot.timelineEnd ?? 0) > 10_000_000)
        // Nobody returns this time: once the slate times out, HLS ends and the stream waits again.
        try await waitFor("the end of the playlist", timeout: .seconds(15)) { playlist().contains("#EXT-X-ENDLIST") }
        #expect(hub.stream("show")?.snapshot.status == .starting)
    }

    @Test func aSecondPublisherWithTheSameKeyReplacesTheFirst() async throws {
        let (hub, server, port) = try await makeServer()
        defer { Task { await server.stop() } }
        let first = try await publish(port: port, seconds: 1, keepOpen: true)
        _ = try await publish(port: port, seconds: 1, keepOpen: true)
        let closedWithin = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { _ = try await first.closed.get(); return true }
            group.addTask { try await Task.sleep(for: .seconds(5)); return false }
            defer { group.cancelAll() }
            return try await group.next() ?? false
        }
        #expect(closedWithin, "the stale publisher was not closed")
        #expect(hub.stream("show")?.snapshot.publishers == 2)
        #expect(hub.stream("show")?.snapshot.publisher != nil)
    }

    @Test func stoppingTheStreamClosesThePublisherAndRefusesTheNext() async throws {
        let (hub, server, port) = try await makeServer()
        defer { Task { await server.stop() } }
        let connection = try await publish(port: port, seconds: 3, keepOpen: true)
        try await waitFor("HLS") { playlist().contains(".ts") }
        hub.stop("show")
        _ = try await connection.closed.get()
        #expect(playlist().contains("#EXT-X-ENDLIST"))
        await #expect(throws: RTMPPushError.self) { try await publish(port: port, seconds: 1) }
        hub.start("show")
        _ = try await publish(port: port, seconds: 1)
    }
}

extension RTMPIngestTests {
    /// Two seconds of 320×240 HEVC (x265, a keyframe a second) and AAC, from ffmpeg, as TS packets.
    func hevcSource() throws -> [ContainerReader.Packet] {
        let file = root.appendingPathExtension("hevc.ts")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let ffmpeg = Process()
        ffmpeg.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        ffmpeg.arguments = ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=sample_rate=48000",
                            "-t", "2", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=30:min-keyint=30:bframes=0:log-level=error",
                            "-c:a", "aac", "-f", "mpegts", file.path]
        try ffmpeg.run()
        ffmpeg.waitUntilExit()
        return try Self.tsPackets(file)
    }

    static func tsPackets(_ file: URL) throws -> [ContainerReader.Packet] {
        let bytes = try Data(contentsOf: file)
        var offset = 0
        let reader = try ContainerReader(format: "mpegts") { buffer in
            let count = min(buffer.count, bytes.count - offset)
            bytes.copyBytes(to: buffer.bindMemory(to: UInt8.self), from: offset..<offset + count)
            offset += count
            return count
        }
        var packets: [ContainerReader.Packet] = []
        while let packet = try reader.next() { packets.append(packet) }
        return packets
    }

    @Test func enhancedRTMPCarriesHEVCThroughToHLS() async throws {
        let (hub, server, port) = try await makeServer()
        defer { Task { await server.stop() } }
        let source = try hevcSource()
        let pictures = source.filter { $0.codec == .hevc }
        let first = try #require(pictures.first { $0.isKeyframe })
        let parameterSets = AnnexB.nalUnits(first.data).filter { HEVC.parameterSetTypes.contains(HEVC.type($0)) }.flatMap { [0, 0, 0, 1] + $0 }
        let endpoint = try RTMPEndpoint(url: "rtmp://127.0.0.1:\(port)/live", streamKey: "good-key")
        let connection = try await RTMPPushConnection.open(endpoint, group: MultiThreadedEventLoopGroup.singleton)
        connection.sendMetadata([("width", .number(320)), ("height", .number(240)), ("framerate", .number(30))])
        connection.send(.video, timestamp: 0, body: try FLVVideo.hevcSequenceHeader(parameterSets: parameterSets))
        let sound = try #require(source.first { $0.codec == .aac }.flatMap { ADTSFrame($0.data) })
        connection.send(.audio, timestamp: 0, body: FLVAudio.aacSequenceHeader(audioSpecificConfig: sound.config.bytes))
        let start = source.map(\.dts).min() ?? 0
        for packet in source {
            let timestamp = UInt32((packet.dts - start) / 1000)
            switch packet.codec {
            case .hevc:
                // Keyframes go without their in-band parameter sets: the server puts them back.
                let slices = AnnexB.nalUnits(packet.data).filter { !HEVC.parameterSetTypes.contains(HEVC.type($0)) }.flatMap { [0, 0, 0, 1] + $0 }
                connection.send(.video, timestamp: timestamp, body: FLVVideo.hevcFrame(annexB: slices, keyframe: packet.isKeyframe))
            case .aac:
                guard let frame = ADTSFrame(packet.data) else { continue }
                connection.send(.audio, timestamp: timestamp, body: FLVAudio.aacFrame(Array(packet.data[frame.headerSize..<frame.length])))
            default:
                continue
            }
        }
        await connection.close()
        try await waitFor("HLS segments") { playlist().split(separator: "\n").filter { $0.hasSuffix(".ts") }.count >= 2 }
        let snapshot = try #require(hub.stream("show")?.snapshot)
        #expect(snapshot.status == .running && snapshot.lastError == nil)
        let firstSegment = try #require(playlist().split(separator: "\n").first { $0.hasSuffix(".ts") })
        let written = try Self.tsPackets(root.appendingPathComponent("show/\(firstSegment)"))
        let keyframe = try #require(written.first { $0.codec == .hevc })
        #expect(keyframe.isKeyframe && AnnexB.nalUnits(keyframe.data).contains { HEVC.type($0) == HEVC.sps })
        #expect(written.contains { $0.codec == .aac })
    }

    @Test func videoPassthroughCannotCarryPutsTheStreamInError() async throws {
        let (hub, server, port) = try await makeServer()
        defer { Task { await server.stop() } }
        let endpoint = try RTMPEndpoint(url: "rtmp://127.0.0.1:\(port)/live", streamKey: "good-key")
        let connection = try await RTMPPushConnection.open(endpoint, group: MultiThreadedEventLoopGroup.singleton)
        // Enhanced RTMP: an AV1 sequence start, then a coded frame; MPEG-TS has no place for AV1.
        connection.send(.video, timestamp: 0, body: [0x90 | 0x00] + Array("av01".utf8) + [1, 2, 3])
        connection.send(.video, timestamp: 33, body: [0x90 | 0x01] + Array("av01".utf8) + [0, 0, 0, 9, 9])
        _ = try await connection.closed.get()
        let snapshot = try #require(hub.stream("show")?.snapshot)
        #expect(snapshot.status == .error && snapshot.lastError?.contains("av01") == true)
        await #expect(throws: RTMPPushError.self) { try await publish(port: port, seconds: 1) }
        hub.start("show")
        _ = try await publish(port: port, seconds: 1)
    }
}
