import Foundation
import MediaCodecs
import RTP
import Testing

/// Coded test pictures made by the real ffmpeg, read from IVF (VP8) or Annex B (H.264).
enum Fixture {
    static func run(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        process.arguments = ["-hide_banner", "-loglevel", "error", "-y"] + arguments
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "ffmpeg \(arguments.joined(separator: " "))")
    }

    static func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("tally-codecs-\(UUID().uuidString)-\(name)").path
    }

    /// VP8 frames of a 320×240 picture whose left half is red and right half blue.
    static func vp8Frames(count: Int) throws -> [[UInt8]] {
        let path = temporary("red-blue.ivf")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try run(["-f", "lavfi", "-i", "color=red:s=160x240:r=30,format=yuv420p[a];color=blue:s=160x240:r=30,format=yuv420p[b];[a][b]hstack",
                 "-frames:v", "\(count)", "-c:v", "libvpx", "-g", "10", "-b:v", "300k", path])
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var frames: [[UInt8]] = []
        var index = Int(bytes[6]) | Int(bytes[7]) << 8
        while index + 12 <= bytes.count {
            let size = Int(bytes[index]) | Int(bytes[index + 1]) << 8 | Int(bytes[index + 2]) << 16 | Int(bytes[index + 3]) << 24
            index += 12
            frames.append(Array(bytes[index..<index + size]))
            index += size
        }
        return frames
    }
}

/// Splits a VP8 frame into RTP packets the way browsers do (RFC 7741, with a picture ID).
func packetizeVP8(_ frames: [[UInt8]], mtu: Int = 300) throws -> [RTPPacket] {
    var packets: [RTPPacket] = []
    var sequence: UInt16 = 65_500
    for (number, frame) in frames.enumerated() {
        let chunks = stride(from: 0, to: frame.count, by: mtu).map { Array(frame[$0..<min($0 + mtu, frame.count)]) }
        for (index, chunk) in chunks.enumerated() {
            var builder = RTPPacketBuilder(payloadType: 96, sequenceNumber: sequence, timestamp: UInt32(number * 3000), ssrc: 42)
            builder.marker = index == chunks.count - 1
            let pictureID = UInt16(number) & 0x7FFF
            builder.payload = [0x80 | (index == 0 ? 0x10 : 0), 0x80, 0x80 | UInt8(pictureID >> 8), UInt8(pictureID & 0xFF)] + chunk
            packets.append(try RTPPacket(builder.serialize()))
            sequence &+= 1
        }
    }
    return packets
}

func averageColor(_ frame: VideoFrame, x: Int, y: Int) -> (y: Int, u: Int, v: Int) {
    (Int(frame.y[y * frame.width + x]), Int(frame.u[y / 2 * frame.chromaWidth + x / 2]), Int(frame.v[y / 2 * frame.chromaWidth + x / 2]))
}

@Suite struct FrameAssemblerTests {
    @Test func reordersAndDecodesVP8() throws {
        let frames = try Fixture.vp8Frames(count: 12)
        var packets = try packetizeVP8(frames)
        // Swap neighbours throughout: every frame arrives out of order.
        for index in stride(from: 1, to: packets.count - 1, by: 3) { packets.swapAt(index, index + 1) }
        var assembler = FrameAssembler(codec: .vp8)
        let decoder = try VPXDecoder(codec: .vp8)
        var decoded: [VideoFrame] = []
        for (index, packet) in packets.enumerated() {
            for frame in assembler.insert(packet, now: .milliseconds(index)) {
                if let picture = try decoder.decode(frame) { decoded.append(picture) }
            }
        }
        #expect(decoded.count == frames.count)
        let last = try #require(decoded.last)
        #expect(last.width == 320 && last.height == 240)
        let left = averageColor(last, x: 40, y: 120)
        let right = averageColor(last, x: 280, y: 120)
        #expect(left.v > 200 && right.u > 200, "red on the left, blue on the right: \(left) \(right)")
    }

    @Test func lossSkipsToTheNextKeyframeAndAsksForIt() throws {
        let frames = try Fixture.vp8Frames(count: 25)
        let packets = try packetizeVP8(frames, mtu: 40)
        let lostTimestamp = UInt32(3 * 3000)
        var assembler = FrameAssembler(codec: .vp8, maxWait: .milliseconds(50))
        var delivered: [UInt32] = []
        var askedAfterLoss = false
        for (index, packet) in packets.enumerated() {
            if packet.timestamp == lostTimestamp { continue }
            let now = Duration.milliseconds(index * 10)
            delivered += assembler.insert(packet, now: now).map(\.rtpTimestamp)
            delivered += assembler.poll(now: now).map(\.rtpTimestamp)
            if assembler.keyframeNeeded && delivered.count > 0 {
                askedAfterLoss = true
                assembler.keyframeNeeded = false
            }
        }
        #expect(askedAfterLoss)
        // Frames 0-2 decode; 3 is lost; 4-9 depend on it; the keyframe at 10 starts again.
        #expect(delivered.prefix(3) == [0, 3000, 6000])
        #expect(delivered.dropFirst(3).first == 30_000)
        #expect(delivered.count == 3 + 15)
        #expect(assembler.framesDropped >= 1)
    }

    @Test func waitsForAKeyframeFirst() throws {
        let frames = try Fixture.vp8Frames(count: 12)
        let packets = try packetizeVP8(frames).filter { $0.timestamp >= 3000 }
        var assembler = FrameAssembler(codec: .vp8)
        var delivered: [UInt32] = []
        for packet in packets { delivered += assembler.insert(packet, now: .zero).map(\.rtpTimestamp) }
        #expect(delivered == [30_000, 33_000])
    }

    @Test func h264DepacketizerRebuildsAnnexB() {
        var output: [UInt8] = []
        var keyframe = false
        // STAP-A with SPS (7) and PPS (8), then an IDR (5) in two FU-A fragments.
        #expect(H264Depacketizer.append([24, 0, 2, 0x67, 1, 0, 2, 0x68, 2], to: &output, keyframe: &keyframe))
        #expect(H264Depacketizer.append([0x7C, 0x85, 0xAA], to: &output, keyframe: &keyframe))
        #expect(H264Depacketizer.append([0x7C, 0x45, 0xBB], to: &output, keyframe: &keyframe))
        #expect(output == [0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65, 0xAA, 0xBB])
        #expect(keyframe)
        #expect(!H264Depacketizer.append([24, 0, 9, 1], to: &output, keyframe: &keyframe))
        #expect(!H264Depacketizer.append([0x80], to: &output, keyframe: &keyframe))
    }
}

@Suite struct EncoderTests {
    @Test func x264RoundTripsThroughLibavcodec() throws {
        let encoder = try H264Encoder(.init(width: 320, height: 240, framesPerSecond: 30, bitrateKbps: 500, threads: 1))
        #expect(encoder.parameterSets.starts(with: [0, 0, 0, 1]))
        let decoder = try AVVideoDecoder(codecID: .init(27))
        var picture = VideoFrame(width: 320, height: 240, fill: (y: 81, u: 90, v: 240))
        var keyframes: [Int64] = []
        var decoded: VideoFrame?
        for index in 0..<65 {
            guard let packet = try encoder.encode(&picture, pts: Int64(index) * 33_333) else { continue }
            if packet.isKeyframe { keyframes.append(packet.pts) }
            #expect(packet.dts <= packet.pts)
            decoded = try decoder.decode(EncodedFrame(data: packet.data, rtpTimestamp: 0, isKeyframe: packet.isKeyframe)) ?? decoded
        }
        #expect(keyframes == [0, 60 * 33_333], "a keyframe every 2 s at 30 fps")
        let frame = try #require(decoded)
        let color = averageColor(frame, x: 160, y: 120)
        #expect(abs(color.y - 81) < 6 && abs(color.v - 240) < 6)
    }

    @Test func aacEncodesWholeFramesWithRisingTimestamps() throws {
        let encoder = try AACEncoder()
        #expect(encoder.audioSpecificConfig.count >= 2)
        var packets: [ProgramPacket] = []
        // One second of a 440 Hz tone, given in uneven pieces.
        let tone = (0..<48_000).flatMap { index -> [Float] in
            let value = Float(sin(Double(index) * 2 * .pi * 440 / 48_000)) * 0.5
            return [value, value]
        }
        var offset = 0
        for piece in [1600, 960, 3333, 48_000] {
            let end = min(tone.count, offset + piece * 2)
            packets += try encoder.encode(Array(tone[offset..<end]))
            offset = end
        }
        #expect(packets.count >= 44)
        #expect(packets.first?.pts == 0)
        #expect(zip(packets, packets.dropFirst()).allSatisfy { $1.pts - $0.pts == 21_333 || $1.pts - $0.pts == 21_334 })
    }

    @Test func fragmentedMP4IsReadableWithoutATrailer() throws {
        let path = Fixture.temporary("program.mp4")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let video = try H264Encoder(.init(width: 320, height: 240, bitrateKbps: 400, threads: 1))
        let audio = try AACEncoder()
        var writer: ContainerWriter? = try ContainerWriter(
            format: .fragmentedMP4, path: path, video: .init(width: 320, height: 240, parameterSets: video.parameterSets),
            audio: .init(audioSpecificConfig: audio.audioSpecificConfig))
        var picture = VideoFrame(width: 320, height: 240, fill: (y: 120, u: 128, v: 128))
        for index in 0..<90 {
            if let packet = try video.encode(&picture, pts: Int64(index) * 33_333) { try writer?.write(packet) }
            for packet in try audio.encode([Float](repeating: 0.1, count: 3200)) { try writer?.write(packet) }
        }
        // No trailer: what a crash leaves behind.
        writer = nil
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/ffprobe")
        probe.arguments = ["-v", "error", "-show_entries", "stream=codec_name,width", "-of", "csv=p=0", path]
        let pipe = Pipe()
        probe.standardOutput = pipe
        try probe.run()
        probe.waitUntilExit()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(output.contains("h264,320"))
        #expect(output.contains("aac"))
    }

    @Test func mpegTSReadsBackFromAByteStream() throws {
        let path = Fixture.temporary("feed.ts")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let video = try H264Encoder(.init(width: 320, height: 240, bitrateKbps: 400, keyframeIntervalSeconds: 1, threads: 1))
        let audio = try AACEncoder()
        var writer: ContainerWriter? = try ContainerWriter(
            format: .mpegTS, path: path, video: .init(width: 320, height: 240, parameterSets: video.parameterSets),
            audio: .init(audioSpecificConfig: audio.audioSpecificConfig))
        var picture = VideoFrame(width: 320, height: 240, fill: (y: 120, u: 128, v: 128))
        for index in 0..<60 {
            if let packet = try video.encode(&picture, pts: 1_000_000 + Int64(index) * 33_333) { try writer?.write(packet) }
            for packet in try audio.encode([Float](repeating: 0.1, count: 3200)) { try writer?.write(packet) }
        }
        try writer?.finish()
        writer = nil
        // Fed in small, uneven pieces, as datagrams arrive.
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        var offset = 0
        let reader = try ContainerReader(format: "mpegts") { buffer in
            let count = min(buffer.count, 1316, bytes.count - offset)
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count].withUnsafeBytes { $0 }[...]))
            offset += count
            return count
        }
        var pictures: [ContainerReader.Packet] = []
        var sounds: [ContainerReader.Packet] = []
        while let packet = try reader.next() {
            switch packet.codec {
            case .h264: pictures.append(packet)
            case .aac: sounds.append(packet)
            case .hevc: Issue.record("unexpected HEVC")
            case .other(let name): Issue.record("unexpected \(name)")
            }
        }
        #expect(pictures.count == 60 && pictures.filter(\.isKeyframe).count == 2)
        #expect(pictures.first?.data.starts(with: [0, 0, 0, 1]) == true || pictures.first?.data.starts(with: [0, 0, 1]) == true)
        #expect(zip(pictures, pictures.dropFirst()).allSatisfy { $1.dts > $0.dts })
        #expect(sounds.count > 80 && sounds.allSatisfy { $0.data.starts(with: [0xFF]) }, "AAC comes back ADTS-framed")
        #expect(throws: CodecError.self) { try ContainerReader(format: "no-such-format") { _ in 0 } }
    }

    @Test func aacDecodesBackToFortyEightKilohertzStereo() throws {
        let encoder = try AACEncoder()
        let tone = (0..<48_000).flatMap { index -> [Float] in
            let value = Float(sin(Double(index) * 2 * .pi * 440 / 48_000) * 0.5)
            return [value, value]
        }
        let decoder = try AACDecoder(audioSpecificConfig: encoder.audioSpecificConfig)
        var samples: [Float] = []
        for packet in try encoder.encode(tone) { samples += try decoder.decode(packet.data) }
        // A second of stereo, less the encoder's and decoder's priming.
        #expect(samples.count > 80_000 && samples.count <= 96_000)
        let loudest = samples.suffix(20_000).map(abs).max() ?? 0
        #expect(loudest > 0.3 && loudest < 0.7, "the tone comes back at about its level: \(loudest)")
        #expect(throws: CodecError.self) { _ = try decoder.decode([0xFF, 0xFF, 0xFF]) }
    }

    @Test func sameSizeDrawingIsAnExactCopy() {
        var canvas = VideoFrame(width: 64, height: 64, fill: (y: 16, u: 128, v: 128))
        var source = VideoFrame(width: 40, height: 40, fill: (y: 100, u: 90, v: 80))
        source.y[12 * 40 + 14] = 250
        FrameScaler().draw(source, crop: PixelRect(x: 4, y: 2, width: 20, height: 20), into: &canvas, rect: PixelRect(x: 10, y: 20, width: 20, height: 20))
        #expect(canvas.y[(20 + 10) * 64 + 10 + 10] == 250, "source (14, 12) lands at canvas (20, 30)")
        #expect(canvas.y[21 * 64 + 11] == 100 && canvas.y[19 * 64 + 11] == 16 && canvas.y[21 * 64 + 30] == 16)
        #expect(canvas.u[(20 / 2) * 32 + 10 / 2] == 90 && canvas.v[(20 / 2) * 32 + 10 / 2] == 80)
    }

    @Test func scalerDrawsIntoARectangle() {
        var canvas = VideoFrame(width: 64, height: 64, fill: (y: 16, u: 128, v: 128))
        let source = VideoFrame(width: 32, height: 32, fill: (y: 200, u: 60, v: 70))
        FrameScaler().draw(source, crop: PixelRect(x: 0, y: 0, width: 32, height: 32), into: &canvas, rect: PixelRect(x: 16, y: 16, width: 16, height: 16))
        #expect(canvas.y[20 * 64 + 20] == 200)
        #expect(canvas.y[10 * 64 + 10] == 16)
        #expect(canvas.u[10 * 32 + 10] == 60)
        #expect(canvas.y[40 * 64 + 40] == 16)
    }
}

@Suite struct ProgramForPlayersTests {
    @Test func packetizedAccessUnitsDepacketizeToThemselves() {
        let big = [UInt8](repeating: 0x5A, count: 3000)
        let unit: [UInt8] = [0, 0, 0, 1, 0x09, 0xF0] + [0, 0, 0, 1, 0x67, 1, 2] + [0, 0, 1, 0x68, 3] + [0, 0, 0, 1, 0x65] + big
        let payloads = H264Packetizer.payloads(unit, maxSize: 1200)
        // The delimiter is left out; SPS and PPS go alone; the slice in three FU-A fragments.
        #expect(payloads.count == 5 && payloads.allSatisfy { $0.count <= 1200 })
        #expect(payloads[2][0] & 0x1F == 28 && payloads[2][1] == 0x80 | 5 && payloads[4][1] == 0x40 | 5)
        var output: [UInt8] = []
        var keyframe = false
        for payload in payloads { #expect(H264Depacketizer.append(payload[...], to: &output, keyframe: &keyframe)) }
        #expect(keyframe && output == [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65] + big)
    }

    @Test func opusEncodesWhole20MillisecondPacketsThatDecodeBack() throws {
        let encoder = try OpusEncoder()
        let tone = (0..<1500).flatMap { index -> [Float] in
            let value = Float(sin(Double(index) * 2 * .pi * 440 / 48_000) * 0.5)
            return [value, value]
        }
        let packets = try encoder.encode(tone)
        #expect(packets.count == 1, "1500 samples make one 960-sample packet; the rest waits")
        #expect(try encoder.encode([Float](repeating: 0, count: 420 * 2)).count == 1)
        let decoder = try OpusDecoder()
        let decoded = try decoder.decode(packets[0][...])
        #expect(decoded.count == 960 * 2)
        #expect(decoded.map(abs).max() ?? 0 > 0.2, "the tone comes back")
    }
}

@Suite struct StillImageTests {
    private func image(_ name: String, size: String, extra: [String] = []) throws -> [UInt8] {
        let path = Fixture.temporary(name)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Fixture.run(["-f", "lavfi", "-i", "color=c=red:s=\(size)", "-frames:v", "1"] + extra + [path])
        return try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// The header's size, read as ffmpeg wrote each format (WebP lossy and lossless).
    @Test(arguments: [("a.png", [String]()), ("a.jpg", []), ("a.webp", ["-c:v", "libwebp"]), ("b.webp", ["-c:v", "libwebp", "-lossless", "1"])])
    func headersDeclareTheirSize(name: String, extra: [String]) throws {
        let bytes = try image(name, size: "320x180", extra: extra)
        let size = try #require(ImageDecoder.declaredSize(bytes))
        #expect(size.width == 320 && size.height == 180)
        #expect(try ImageDecoder.decode(bytes, maxWidth: 1920, maxHeight: 1080).picture.width == 320)
    }

    @Test func anImageOverThePixelBoundIsNotDecoded() throws {
        let bytes = try image("big.png", size: "5000x4000")
        #expect(ImageDecoder.declaredSize(bytes)?.width == 5000)
        #expect(throws: CodecError.self) { try ImageDecoder.decode(bytes, maxWidth: 1920, maxHeight: 1080) }
    }
}
