import Foundation
import MediaCodecs
@testable import Outputs
import Testing

@Suite struct KeyframeGateTests {
    @Test func startsAndRecoversOnAVideoKeyframe() {
        var gate = KeyframeGate()
        let audio = ProgramPacket(kind: .audio, data: [1], pts: 0, dts: 0, isKeyframe: true)
        let delta = ProgramPacket(kind: .video, data: [1], pts: 0, dts: 0, isKeyframe: false)
        let key = ProgramPacket(kind: .video, data: [1], pts: 0, dts: 0, isKeyframe: true)
        let sequence: [(ProgramPacket, Bool)] = [(audio, true), (delta, true), (key, true), (audio, true), (delta, true), (delta, false), (audio, true), (key, true)]
        var admitted: [Bool] = []
        for (packet, room) in sequence { admitted.append(gate.admit(packet, hasRoom: room)) }
        // After an overflow everything waits for the next keyframe, audio too; only those
        // drops count, not the wait for the first keyframe.
        #expect(admitted == [false, false, true, true, true, false, false, true])
        #expect(gate.dropped == 2)
    }

    @Test func reconnectBackoffGrowsToThirtySecondsWithJitter() {
        #expect(reconnectDelay(attempt: 1, jitter: 0) == 1)
        #expect(reconnectDelay(attempt: 3, jitter: 0) == 2.25)
        #expect(reconnectDelay(attempt: 10, jitter: 0) == 30)
        #expect(reconnectDelay(attempt: 10, jitter: 0.1) == 33)
        for _ in 0..<100 { #expect((0.9...1.1).contains(reconnectDelay(attempt: 1))) }
        // A receiver back after 10 s is retried within 5 s, however the jitter falls.
        for jitter in [-0.1, 0, 0.1] {
            var elapsed = 0.0
            var attempt = 1
            while elapsed < 10 {
                elapsed += reconnectDelay(attempt: attempt, jitter: jitter)
                attempt += 1
            }
            #expect(elapsed - 10 < 5, "jitter \(jitter): next try \(elapsed - 10) s after the return")
        }
    }
}

@Suite struct HLSOutputTests {
    @Test func cutsTwoSecondSegmentsOnKeyframesAndEndsThePlaylist() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-hls-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let video = try H264Encoder(.init(width: 320, height: 240, bitrateKbps: 300, threads: 1))
        let audio = try AACEncoder()
        let hls = try HLSOutput(directory: directory, video: .init(width: 320, height: 240, parameterSets: video.parameterSets),
                                audio: .init(audioSpecificConfig: audio.audioSpecificConfig), targetDuration: 2, windowSize: 3)
        var picture = VideoFrame(width: 320, height: 240, fill: (y: 90, u: 100, v: 200))
        for index in 0..<(30 * 9) {
            if let packet = try video.encode(&picture, pts: Int64(index) * 1_000_000 / 30) { hls.offer(packet) }
            for packet in try audio.encode([Float](repeating: 0.1, count: 3200)) { hls.offer(packet) }
        }
        hls.finish()
        let playlist = try String(contentsOf: directory.appendingPathComponent(HLSOutput.playlistName), encoding: .utf8)
        #expect(playlist.hasPrefix("#EXTM3U"))
        #expect(playlist.contains("#EXT-X-TARGETDURATION:2"))
        #expect(playlist.hasSuffix("#EXT-X-ENDLIST\n"))
        let durations = playlist.split(separator: "\n").filter { $0.hasPrefix("#EXTINF:") }.compactMap { Double($0.dropFirst(8).dropLast()) }
        #expect(durations.count == 5)
        #expect(durations.dropLast().allSatisfy { abs($0 - 2) < 0.05 })
        for name in playlist.split(separator: "\n").filter({ $0.hasSuffix(".ts") }) {
            #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent(String(name)).path))
        }
    }
}

@Suite struct RecordingOutputTests {
    /// Packets of three seconds of a 320×240 program, video and audio.
    private func program(seconds: Int) throws -> (video: ContainerWriter.VideoTrack, audio: ContainerWriter.AudioTrack, packets: [ProgramPacket]) {
        let video = try H264Encoder(.init(width: 320, height: 240, bitrateKbps: 300, threads: 1))
        let audio = try AACEncoder()
        var picture = VideoFrame(width: 320, height: 240, fill: (y: 90, u: 100, v: 200))
        var packets: [ProgramPacket] = []
        for index in 0..<(30 * seconds) {
            if let packet = try video.encode(&picture, pts: Int64(index) * 1_000_000 / 30) { packets.append(packet) }
            packets += try audio.encode([Float](repeating: 0.1, count: 3200))
        }
        return (.init(width: 320, height: 240, parameterSets: video.parameterSets), .init(audioSpecificConfig: audio.audioSpecificConfig), packets)
    }

    /// A disk that is full when a recording starts: an error to report, not a crash (the
    /// muxer's trailer was written over a header that never was).
    @Test func aRecordingOntoAFullDiskFailsToStartWithoutCrashing() throws {
        let (video, audio, _) = try program(seconds: 1)
        #expect(throws: CodecError.self) { try RecordingOutput(path: "/dev/full", format: video, audio: audio) }
    }

    @Test func theSizeLimitStopsTheRecordingKeepingWhatItWrote() throws {
        let (video, audio, packets) = try program(seconds: 3)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tally-recording-\(UUID().uuidString).mp4").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let recording = try RecordingOutput(path: path, format: video, audio: audio, maxBytes: 20_000)
        for packet in packets { recording.offer(packet) }
        recording.finish()
        #expect(recording.status.state == .failed(reason: "the recording reached its size limit of 0 MB"))
        #expect(recording.status.size < 80_000)
        #expect(recording.status.duration < 3)
    }
}
