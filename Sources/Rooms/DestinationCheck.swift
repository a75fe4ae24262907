import Foundation
import Logging
import NetworkPolicy
import NIOPosix
import Outputs
import RTMP

/// A destination's check before a show: a real RTMP(S) handshake, connect and publish with
/// its stream key, unpublished at once.
///
/// What it tells is deliberately coarse: refused, timed out and reset all read
/// "unreachable", so the check cannot time or tell apart the ports of a host.
public enum DestinationCheck {
    public enum Verdict: String, Sendable {
        /// The server let us publish.
        case ok
        /// The server (or its URL) refused the app or the key.
        case rejected
        /// The network: nothing answered, or the address is not a public one.
        case unreachable
    }

    public struct Outcome: Sendable {
        public var verdict: Verdict
        /// For the user; the key never appears in it.
        public var message: String
        public var elapsed: Duration
    }

    public static func run(url: String, streamKey: String, policy: OutboundPolicy, logger: Logger) async -> Outcome {
        let endpoint: RTMPEndpoint
        do {
            endpoint = try RTMPEndpoint(url: url, streamKey: streamKey)
        } catch {
            return Outcome(verdict: .rejected, message: "\(error)", elapsed: .zero)
        }
        let started = ContinuousClock.now
        do throws(RTMPPushError) {
            let connection = try await RTMPPushConnection.open(endpoint, group: MultiThreadedEventLoopGroup.singleton, policy: policy)
            await connection.close()
            return Outcome(verdict: .ok, message: "\(endpoint.host) accepted the stream key for publishing", elapsed: ContinuousClock.now - started)
        } catch {
            let (verdict, message): (Verdict, String) = switch error {
            case .rejected(let why): (.rejected, "\(endpoint.host) refused to publish: \(DestinationPush.redacting(streamKey, in: why))")
            case .network: (.unreachable, "\(endpoint.host) could not be reached for publishing")
            case .forbidden: (.unreachable, "\(endpoint.host) is a private, loopback or link-local address; Tally only pushes to public servers")
            }
            logger.info("destination check failed", metadata: ["result": "\(verdict)", "detail": "\(DestinationPush.redacting(streamKey, in: error.description))"])
            return Outcome(verdict: verdict, message: message, elapsed: ContinuousClock.now - started)
        }
    }
}
