import FLV
import Foundation
import MediaCodecs
import NetworkPolicy
import NIOPosix
import Outputs
import RTMP
import Testing

@Suite(.serialized) struct RTMPPushTests {
    @Test func pushesH264AndAACThatNginxRecords() async throws {
        let nginx = try NginxRTMP(onPublish: "allow")
        let endpoint = try RTMPEndpoint(url: "rtmp://127.0.0.1:\(nginx.rtmpPort)/live", streamKey: "studio-test")
        let connection = try await RTMPPushConnection.open(endpoint, group: MultiThreadedEventLoopGroup.singleton, policy: .unrestricted)
        let video = try H264Encoder(.init(width: 320, height: 240, framesPerSecond: 30, bitrateKbps: 400, threads: 1))
        let audio = try AACEncoder()
        connection.sendMetadata([("width", .number(320)), ("height", .number(240)), ("framerate", .number(30)),
                                 ("videocodecid", .number(7)), ("audiocodecid", .number(10))])
        connection.send(.video, timestamp: 0, body: try FLVVideo.avcSequenceHeader(parameterSets: video.parameterSets))
        connection.send(.audio, timestamp: 0, body: FLVAudio.aacSequenceHeader(audioSpecificConfig: audio.audioSpecificConfig))
        var picture = VideoFrame(width: 320, height: 240, fill: (y: 100, u: 200, v: 60))
        for index in 0..<60 {
            if let packet = try video.encode(&picture, pts: Int64(index) * 33_333) {
                connection.send(.video, timestamp: UInt32(packet.dts / 1000), body: FLVVideo.avcFrame(annexB: packet.data, keyframe: packet.isKeyframe))
            }
            for packet in try audio.encode([Float](repeating: 0.05, count: 3200)) {
                connection.send(.audio, timestamp: UInt32(packet.pts / 1000), body: FLVAudio.aacFrame(packet.data))
            }
        }
        #expect(connection.isWritable)
        await connection.close()
        try await Task.sleep(for: .milliseconds(500))
        let streams = try ffprobe(["-show_entries", "stream=codec_name,width,height,sample_rate", "-of", "csv=p=0", nginx.recording("studio-test")])
        #expect(streams.contains("h264,320,240"), "nginx recorded: \(streams)")
        #expect(streams.contains("aac,48000"), "nginx recorded: \(streams)")
        let duration = try ffprobe(["-show_entries", "format=duration", "-of", "csv=p=0", nginx.recording("studio-test")])
        #expect((Double(duration.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 1.5)
    }

    @Test(.timeLimit(.minutes(1))) func closingAPushToAReceiverThatStoppedReadingDoesNotHang() async throws {
        let nginx = try NginxRTMP(onPublish: "allow")
        let endpoint = try RTMPEndpoint(url: "rtmp://127.0.0.1:\(nginx.rtmpPort)/live", streamKey: "frozen")
        let connection = try await RTMPPushConnection.open(endpoint, group: MultiThreadedEventLoopGroup.singleton, policy: .unrestricted)
        nginx.freeze()
        let filler = [UInt8](repeating: 0x17, count: 64 << 10)
        for index in 0..<200 where connection.isWritable {
            connection.send(.video, timestamp: UInt32(index * 33), body: filler)
            try await Task.sleep(for: .milliseconds(5))
        }
        let started = ContinuousClock.now
        await connection.close()
        let waited = ContinuousClock.now - started
        #expect(waited < .seconds(10), "close waited \(waited) for a receiver that reads nothing")
    }

    @Test func aRefusedKeyIsARejectionNotANetworkError() async throws {
        let nginx = try NginxRTMP(onPublish: "deny")
        let endpoint = try RTMPEndpoint(url: "rtmp://127.0.0.1:\(nginx.rtmpPort)/live", streamKey: "bad-key")
        await #expect { try await RTMPPushConnection.open(endpoint, group: MultiThreadedEventLoopGroup.singleton, policy: .unrestricted) } throws: { error in
            guard case .rejected = error as? RTMPPushError else { return false }
            return true
        }
    }

    @Test func anUnreachableServerIsANetworkError() async throws {
        let port = try NginxRTMP.freePort()
        let endpoint = try RTMPEndpoint(url: "rtmp://127.0.0.1:\(port)/live", streamKey: "k")
        await #expect { try await RTMPPushConnection.open(endpoint, group: MultiThreadedEventLoopGroup.singleton, policy: .unrestricted) } throws: { error in
            guard case .network = error as? RTMPPushError else { return false }
            return true
        }
    }
}
