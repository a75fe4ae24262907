import Foundation
import MediaCodecs
import NetworkPolicy
import NIOPosix
import Outputs
import RTMP
import Synchronization
import Testing

@Suite(.serialized) struct DestinationPushTests {
    private func format() throws -> ProgramFormat {
        let video = try H264Encoder(.init(width: 320, height: 240, bitrateKbps: 300, threads: 1))
        return ProgramFormat(width: 320, height: 240, framesPerSecond: 30, videoBitrateKbps: 300, parameterSets: video.parameterSets,
                             audioSpecificConfig: try AACEncoder().audioSpecificConfig)
    }

    private func waitFor(_ seconds: Double, _ condition: () -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return condition()
    }

    @Test func goesLiveAndStopsCleanly() async throws {
        let nginx = try NginxRTMP(onPublish: "allow")
        let states = Mutex<[String]>([])
        let push = DestinationPush(id: "d", endpoint: try RTMPEndpoint(url: "rtmp://127.0.0.1:\(nginx.rtmpPort)/live", streamKey: "k"),
                                   format: try format(), group: MultiThreadedEventLoopGroup.singleton, policy: .unrestricted) { state in states.withLock { $0.append(state.name) } }
        push.start()
        #expect(try await waitFor(5) { push.state == .live })
        await push.stop()
        #expect(states.withLock { $0 } == ["connecting", "live", "stopped"])
    }

    @Test func aRefusedKeyFailsAfterThreeTries() async throws {
        let nginx = try NginxRTMP(onPublish: "deny")
        let push = DestinationPush(id: "d", endpoint: try RTMPEndpoint(url: "rtmp://127.0.0.1:\(nginx.rtmpPort)/live", streamKey: "bad"),
                                   format: try format(), group: MultiThreadedEventLoopGroup.singleton, policy: .unrestricted) { _ in }
        push.start()
        #expect(try await waitFor(8) { if case .failed = push.state { return true } else { return false } })
        #expect(push.state.reason?.isEmpty == false)
        await push.stop()
    }

    /// Aimed at this machine, a destination fails at once under the default policy, where
    /// without one it would be retried for ever like any unreachable server.
    @Test func aLoopbackDestinationIsRefusedNotRetried() async throws {
        let port = try NginxRTMP.freePort()
        let push = DestinationPush(id: "d", endpoint: try RTMPEndpoint(url: "rtmp://127.0.0.1:\(port)/live", streamKey: "test-key"),
                                   format: try format(), group: MultiThreadedEventLoopGroup.singleton, policy: OutboundPolicy()) { _ in }
        push.start()
        #expect(try await waitFor(3) { if case .failed = push.state { return true } else { return false } })
        #expect(push.state.reason?.contains("loopback") == true)
        await push.stop()
    }

    @Test func aMissingServerIsRetriedWithBackoff() async throws {
        let port = try NginxRTMP.freePort()
        let push = DestinationPush(id: "d", endpoint: try RTMPEndpoint(url: "rtmp://127.0.0.1:\(port)/live", streamKey: "k"),
                                   format: try format(), group: MultiThreadedEventLoopGroup.singleton, policy: .unrestricted) { _ in }
        push.start()
        #expect(try await waitFor(3) { if case .reconnecting(_, let wait, _) = push.state { return wait >= 0.5 } else { return false } })
        await push.stop()
        #expect(push.state == .stopped)
    }
}

