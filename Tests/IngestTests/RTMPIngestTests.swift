import FLV
import Foundation
import Logging
import MediaCodecs
import NetworkPolicy
import NIOPosix
import Outputs
import RTMP
import Synchronization
import Testing

@testable import Ingest

/// Our own RTMP client publishes to the ingest server on loopback.
@Suite(.serialized) struct RTMPIngestTests {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("tally-ingest-\(UUID().uuidString)")

    func makeServer(slateTimeout: Duration = .seconds(60), settings: IngestSettings = IngestSettings()) async throws -> (IngestHub, RTMPIngestServer, Int) {
        let hub = IngestHub(hlsRoot: root, slateTimeout: slateTimeout, logger: Logger(label: "test")) { request in
            request.streamKey == "good-key" ? .allow(streamID: "show", settings: settings) : .deny("unknown stream key")
        }
        hub.start("show")
        let server = RTMPIngestServer(hub: hub, host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
        let port = try await server.start()
        return (hub, server, port)
    }

    /// Publishes `seconds` of 320×240 video (a keyframe each second) and AAC, as fast as it can.
    func publish(port: Int, key: String = "good-key", seconds: Int, keepOpen: Bool = false) async throws -> RTMPPushConnection {
        let endpoint = try RTMPEndpoint(url: "rtmp://127.0.0.1:\(port)/live", streamKey: key)
        let connection = try await RTMPPushConnection.open(endpoint, group: MultiThreadedEventLoopGroup.singleton, policy: .unrestricted)
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

    func playlist(_ variant: String? = nil) -> String {
        let path = variant.map { "show/\($0)/index.m3u8" } ?? "show/index.m3u8"
        return (try? String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)) ?? ""
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
        await #expect { try await RTMPPushConnection.open(endpoint, group: MultiThreadedEventLoopGroup.singleton, policy: .unrestricted) } throws: { error in
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
        return try Self.packets(file)
    }

    /// Every packet of a file, demuxed with libavformat as `format`.
    static func packets(_ file: URL, format: String = "mpegts") throws -> [ContainerReader.Packet] {
        let bytes = try Data(contentsOf: file)
        var offset = 0
        let reader = try ContainerReader(format: format) { buffer in
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
        let connection = try await RTMPPushConnection.open(endpoint, group: MultiThreadedEventLoopGroup.singleton, policy: .unrestricted)
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
        let written = try Self.packets(root.appendingPathComponent("show/\(firstSegment)"))
        let keyframe = try #require(written.first { $0.codec == .hevc })
        #expect(keyframe.isKeyframe && AnnexB.nalUnits(keyframe.data).contains { HEVC.type($0) == HEVC.sps })
        #expect(written.contains { $0.codec == .aac })
    }

    @Test func videoPassthroughCannotCarryPutsTheStreamInError() async throws {
        let (hub, server, port) = try await makeServer()
        defer { Task { await server.stop() } }
        let endpoint = try RTMPEndpoint(url: "rtmp://127.0.0.1:\(port)/live", streamKey: "good-key")
        let connection = try await RTMPPushConnection.open(endpoint, group: MultiThreadedEventLoopGroup.singleton, policy: .unrestricted)
        // Enhanced RTMP: a VVC sequence start, then a coded frame; neither HLS nor anything here plays VVC.
        connection.send(.video, timestamp: 0, body: [0x90 | 0x00] + Array("vvc1".utf8) + [1, 2, 3])
        connection.send(.video, timestamp: 33, body: [0x90 | 0x01] + Array("vvc1".utf8) + [0, 0, 0, 9, 9])
        _ = try await connection.closed.get()
        let snapshot = try #require(hub.stream("show")?.snapshot)
        #expect(snapshot.status == .error && snapshot.lastError?.contains("vvc1") == true)
        await #expect(throws: RTMPPushError.self) { try await publish(port: port, seconds: 1) }
        hub.start("show")
        _ = try await publish(port: port, seconds: 1)
    }

    /// AV1 passes through as fMP4, and the ladder decodes it (dav1d) into H.264 renditions.
    @Test func enhancedRTMPCarriesAV1IntoFMP4HLSAndTheLadder() async throws {
        let (hub, server, port) = try await makeServer(settings: IngestSettings(ladder: [Rendition.named("360p30")!]))
        defer { Task { await server.stop() } }
        let connection = try await publishAV1(port: port, seconds: 3)
        try await waitFor("fMP4 segments and every picture") {
            playlist("source").contains(".m4s") && (hub.stream("show")?.snapshot.timelineEnd ?? 0) >= 2_900_000
        }
        let snapshot = try #require(hub.stream("show")?.snapshot)
        #expect(snapshot.status == .running && snapshot.lastError == nil)
        #expect(snapshot.video?.codec == .av1 && snapshot.video?.width == 320 && snapshot.video?.height == 240)
        // Stopped, the stream ends its playlist with the last segment, so ffprobe reads to the end.
        hub.stop("show")
        _ = try await connection.closed.get()
        #expect(playlist("source").contains("#EXT-X-MAP:URI=\"init0.mp4\"") && playlist("source").hasSuffix("#EXT-X-ENDLIST\n"))
        // The master names the source by its own codec string, and the rendition is H.264 from the decoded AV1.
        #expect(playlist().contains("CODECS=\"av01.0.") && playlist().contains("360p30/index.m3u8"), "\(playlist())")
        try await waitFor("the 360p30 rendition") { playlist("360p30").contains(".ts") }
        // ffmpeg's HLS reader follows the map and decodes AV1 (dav1d) with the sound.
        let probe = Process()
        let output = Pipe()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/ffprobe")
        probe.arguments = ["-v", "error", "-count_frames", "-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0",
                           root.appendingPathComponent("show/source/index.m3u8").path]
        probe.standardOutput = output
        try probe.run()
        let streams = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        probe.waitUntilExit()
        let video = try #require(streams.split(separator: "\n").first { $0.hasPrefix("av1,") }, "\(streams)").split(separator: ",")
        #expect(video[1] == "320" && video[2] == "240" && (Int(video[3]) ?? 0) >= 85, "\(streams)")
        #expect(streams.contains("aac"))
    }

    /// Publishes `seconds` of AV1 (libaom) and AAC over enhanced RTMP, as fast as it can or
    /// `paced` in real time; the connection stays open.
    func publishAV1(port: Int, seconds: Int, paced: Bool = false) async throws -> RTMPPushConnection {
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let source = try Self.av1Frames(seconds: seconds, directory: root)
        let first = try #require(source.first)
        let sequenceHeader = try #require(AV1.obus(first.data[...])?.first { $0.type == AV1.sequenceHeader })
        let record = try #require(AV1CodecConfiguration(sequenceHeaderOBU: sequenceHeader.bytes)).record
        let endpoint = try RTMPEndpoint(url: "rtmp://127.0.0.1:\(port)/live", streamKey: "good-key")
        let connection = try await RTMPPushConnection.open(endpoint, group: MultiThreadedEventLoopGroup.singleton, policy: .unrestricted)
        let audio = try AACEncoder()
        connection.sendMetadata([("framerate", .number(30))])
        connection.send(.video, timestamp: 0, body: FLVVideo.enhancedSequenceStart(fourCC: "av01", record: record))
        connection.send(.audio, timestamp: 0, body: FLVAudio.aacSequenceHeader(audioSpecificConfig: audio.audioSpecificConfig))
        for (index, frame) in source.enumerated() {
            let timestamp = UInt32(index * 1000 / 30)
            // Keyframes go without the sequence header: the server puts it back.
            let units = try #require(AV1.obus(frame.data[...]))
            let keyframe = units.contains { $0.type == AV1.sequenceHeader }
            let data = units.filter { $0.type != AV1.sequenceHeader }.flatMap(\.bytes)
            connection.send(.video, timestamp: timestamp, body: FLVVideo.enhancedFrame(fourCC: "av01", data: data, keyframe: keyframe))
            for packet in try audio.encode([Float](repeating: 0.1, count: 3200)) {
                connection.send(.audio, timestamp: UInt32(packet.pts / 1000), body: FLVAudio.aacFrame(packet.data))
            }
            if paced { try await Task.sleep(for: .milliseconds(33)) }
        }
        return connection
    }

    /// A relay sends AV1 on as enhanced RTMP; here the destination is this server itself.
    @Test func aRelayCarriesAV1OnOverEnhancedRTMP() async throws {
        let settings = Mutex(IngestSettings())
        let hub = IngestHub(hlsRoot: root, outbound: .unrestricted, logger: Logger(label: "test")) { request in
            switch request.streamKey {
            case "good-key": .allow(streamID: "show", settings: settings.withLock { $0 })
            case "relay-key": .allow(streamID: "copy")
            default: .deny("unknown stream key")
            }
        }
        hub.start("show")
        hub.start("copy")
        let server = RTMPIngestServer(hub: hub, host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
        let port = try await server.start()
        defer { Task { await server.stop() } }
        let destination = try RTMPEndpoint(url: "rtmp://127.0.0.1:\(port)/live", streamKey: "relay-key")
        settings.withLock { $0 = IngestSettings(relays: [IngestRelay(id: "loop", endpoint: destination)]) }
        let connection = try await publishAV1(port: port, seconds: 4, paced: true)
        let copy = try #require(hub.stream("copy"))
        try await waitFor("the relayed copy's fMP4") { playlist("../copy").contains(".m4s") }
        #expect(hub.stream("show")?.snapshot.relays["loop"] == .live)
        #expect(copy.snapshot.video?.codec == .av1 && copy.snapshot.video?.width == 320 && copy.snapshot.lastError == nil)
        #expect(copy.snapshot.audio != nil)
        hub.stop("show")
        _ = try await connection.closed.get()
        // The source stopped: the relay unpublished, and the copy holds its place with the slate.
        try await waitFor("the relay to unpublish") { copy.snapshot.slateShowing }
        #expect(hub.stream("show")?.snapshot.relays.isEmpty == true)
    }

    /// AV1 from libaom (a keyframe a second, each with its sequence header), as IVF frames.
    static func av1Frames(seconds: Int, directory: URL) throws -> [ContainerReader.Packet] {
        try ivfFrames(seconds: seconds, directory: directory, encoder: ["libaom-av1", "-cpu-used", "8", "-usage", "realtime", "-lag-in-frames", "0"])
    }

    /// VP9 from libvpx (a keyframe a second, no hidden frames), as IVF frames.
    static func vp9Frames(seconds: Int, directory: URL) throws -> [ContainerReader.Packet] {
        try ivfFrames(seconds: seconds, directory: directory, encoder: ["libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-lag-in-frames", "0"])
    }

    /// 320×240 at 30 fps from ffmpeg's `encoder` (its name and options), 300 kbps, a keyframe a second.
    private static func ivfFrames(seconds: Int, directory: URL, encoder: [String]) throws -> [ContainerReader.Packet] {
        let file = directory.appendingPathComponent("source-\(encoder[0]).ivf")
        let ffmpeg = Process()
        ffmpeg.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        ffmpeg.arguments = ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "\(seconds)",
                            "-c:v"] + encoder + ["-g", "30", "-b:v", "300k", file.path]
        try ffmpeg.run()
        ffmpeg.waitUntilExit()
        return try packets(file, format: "ivf")
    }
}
