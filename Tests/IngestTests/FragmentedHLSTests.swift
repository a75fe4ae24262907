import FLV
import Foundation
import MediaCodecs
import Outputs
import Testing

@testable import Ingest

/// HLS in fMP4: what AV1 needs, checked with ffprobe on the files written.
@Suite struct FragmentedHLSTests {
    func ffprobe(_ arguments: [String]) throws -> String {
        let process = Process()
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ffprobe")
        process.arguments = ["-v", "error"] + arguments
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    @Test func av1GoesIntoFMP4SegmentsAndATrackChangeBringsANewMap() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-hls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = try RTMPIngestTests.av1Frames(seconds: 4, directory: directory)
        let first = try #require(source.first)
        let sequenceHeader = try #require(AV1.obus(first.data[...])?.first { $0.type == AV1.sequenceHeader })
        let configuration = try #require(AV1CodecConfiguration(sequenceHeaderOBU: sequenceHeader.bytes))
        #expect(configuration.sequenceHeader?.width == 320 && configuration.sequenceHeader?.height == 240)
        #expect(CodecString.av1(configuration).hasPrefix("av01.0.") && CodecString.av1(configuration).hasSuffix("M.08"))
        let aac = try AACEncoder()
        let output = directory.appendingPathComponent("hls")
        let hls = try HLSOutput(directory: output, video: .init(codec: .av1, width: 320, height: 240, parameterSets: configuration.record),
                                audio: .init(audioSpecificConfig: aac.audioSpecificConfig), targetDuration: 1, windowSize: 10)
        let start = source[0].dts
        var end: Int64 = 0
        for (index, frame) in source.enumerated() {
            let time = frame.dts - start
            let keyframe = AV1.obus(frame.data[...])?.contains { $0.type == AV1.sequenceHeader } ?? false
            hls.offer(ProgramPacket(kind: .video, data: frame.data, pts: time, dts: time, isKeyframe: keyframe))
            if index % 3 == 0 { for packet in try aac.encode([Float](repeating: 0.1, count: 9600)) { hls.offer(packet) } }
            end = time + 33_333
        }
        // Then H.264 (as the slate would be): a discontinuity with its own map, still fMP4.
        let video = try H264Encoder(.init(width: 320, height: 240, bitrateKbps: 300, keyframeIntervalSeconds: 1, threads: 1))
        hls.changeTracks(video: .init(width: 320, height: 240, parameterSets: video.parameterSets), audio: .init(audioSpecificConfig: aac.audioSpecificConfig))
        var picture = VideoFrame(width: 320, height: 240, fill: (y: 90, u: 100, v: 200))
        for index in 0..<60 {
            if let packet = try video.encode(&picture, pts: end + Int64(index) * 33_333) { hls.offer(packet) }
            if index % 3 == 0 {
                for packet in try aac.encode([Float](repeating: 0.1, count: 9600)) {
                    hls.offer(ProgramPacket(kind: .audio, data: packet.data, pts: end + packet.pts - 4_000_000, dts: end + packet.dts - 4_000_000, isKeyframe: true))
                }
            }
        }
        hls.finish()
        let playlist = try String(contentsOf: output.appendingPathComponent(HLSOutput.playlistName), encoding: .utf8)
        #expect(playlist.contains("#EXT-X-VERSION:7"))
        let lines = playlist.split(separator: "\n")
        let maps = lines.filter { $0.hasPrefix("#EXT-X-MAP:URI=") }
        #expect(maps == ["#EXT-X-MAP:URI=\"init0.mp4\"", "#EXT-X-MAP:URI=\"init4.mp4\""], "\(playlist)")
        #expect(lines.filter { $0 == "#EXT-X-DISCONTINUITY" }.count == 1)
        let segments = lines.filter { !$0.hasPrefix("#") }
        #expect(segments.count == 6 && segments.allSatisfy { $0.hasSuffix(".m4s") }, "\(playlist)")
        // Each run's map and segments make a file that decodes: AV1 at 320×240, then H.264.
        for (map, range, codec) in [("init0.mp4", 0..<4, "av1"), ("init4.mp4", 4..<6, "h264")] {
            var joined = try Data(contentsOf: output.appendingPathComponent(map))
            for sequence in range { joined += try Data(contentsOf: output.appendingPathComponent("segment\(sequence).m4s")) }
            let file = directory.appendingPathComponent("\(codec).mp4")
            try joined.write(to: file)
            let streams = try ffprobe(["-count_frames", "-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0", file.path])
            let video = try #require(streams.split(separator: "\n").first { $0.hasPrefix(codec) }).split(separator: ",")
            #expect(video[1] == "320" && video[2] == "240")
            #expect((Int(video[3]) ?? 0) >= (codec == "av1" ? 115 : 55), "\(streams)")
            #expect(streams.contains("aac"))
        }
    }

    @Test func vp9GoesIntoFMP4SegmentsWithItsOwnConfiguration() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-hls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = try RTMPIngestTests.vp9Frames(seconds: 3, directory: directory)
        let configuration = VP9CodecConfiguration(profile: 0, level: 21, bitDepth: 8)
        let output = directory.appendingPathComponent("hls")
        let hls = try HLSOutput(directory: output, video: .init(codec: .vp9, width: 320, height: 240, parameterSets: configuration.record),
                                audio: nil, targetDuration: 1, windowSize: 10)
        let start = source[0].dts
        for frame in source {
            // VP9's uncompressed header (profile 0): frame marker, profile, show-existing, then frame type 0 for a keyframe.
            let keyframe = frame.data.first.map { $0 & 0xC0 == 0x80 && $0 & 0x0C == 0 } ?? false
            hls.offer(ProgramPacket(kind: .video, data: frame.data, pts: frame.dts - start, dts: frame.dts - start, isKeyframe: keyframe))
        }
        hls.finish()
        let playlist = try String(contentsOf: output.appendingPathComponent(HLSOutput.playlistName), encoding: .utf8)
        let segments = playlist.split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(playlist.contains("#EXT-X-MAP:URI=\"init0.mp4\"") && segments.count == 3, "\(playlist)")
        var joined = try Data(contentsOf: output.appendingPathComponent("init0.mp4"))
        for segment in segments { joined += try Data(contentsOf: output.appendingPathComponent(String(segment))) }
        let file = directory.appendingPathComponent("vp9.mp4")
        try joined.write(to: file)
        let streams = try ffprobe(["-count_frames", "-show_entries", "stream=codec_name,profile,width,height,nb_read_frames", "-of", "csv=p=0", file.path])
        #expect(streams.trimmingCharacters(in: .whitespacesAndNewlines) == "vp9,Profile 0,320,240,90", "\(streams)")
    }
}
