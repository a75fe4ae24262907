import FluentKit
import Foundation
import Hummingbird
import NIOPosix
import Outputs
import RTMP
import Store

/// What a destination check found: whether the server let us publish, and if not, why.
extension API {
    /// Checks a user may run a minute: each one is a real connection to a server they chose.
    static let destinationTestsPerMinute = 10
}

struct DestinationCheckResponse: APIResponse {
    var destinationId: UUID
    /// `ok`, `rejected` (the server refused the app or key) or `unreachable` (network).
    var result: String
    var message: String
    var elapsedMs: Int
}

extension API {
    /// `POST /api/broadcasts/{id}/destinations/{destId}/test`: a real RTMP(S) handshake,
    /// connect and publish with the stored key, unpublished at once. Not while live: a second
    /// publish of the same key would knock the program's push off.
    ///
    /// What it tells is deliberately coarse: refused, timed out and reset all read
    /// "unreachable", so the check cannot time or tell apart the ports of a host.
    func addDestinationTestRoute(to router: Router<AppContext>) {
        router.post("api/broadcasts/:id/destinations/:destId/test") { _, context in
            let (broadcast, destination) = try await ownedDestination(context)
            try await enforceRateLimit("destination-test:\(try context.requireUser())", limit: Self.destinationTestsPerMinute)
            let id = try destination.requireID()
            guard broadcast.status != BroadcastStatus.live.rawValue else {
                throw APIError(.conflict, "broadcast_live", "the broadcast is live: its push to this destination shows how it is doing")
            }
            let key: String
            do {
                key = try store.sealer.open(destination.streamKeySealed)
            } catch {
                throw APIError(.conflict, "stream_key_unreadable", "the stream key cannot be decrypted; add the destination again")
            }
            let endpoint: RTMPEndpoint
            do {
                endpoint = try RTMPEndpoint(url: destination.rtmpURL, streamKey: key)
            } catch {
                return DestinationCheckResponse(destinationId: id, result: "rejected", message: "\(error)", elapsedMs: 0)
            }
            let started = ContinuousClock.now
            func elapsed() -> Int { Int((ContinuousClock.now - started) / .milliseconds(1)) }
            do throws(RTMPPushError) {
                let connection = try await RTMPPushConnection.open(endpoint, group: MultiThreadedEventLoopGroup.singleton,
                                                                   policy: configuration.outboundPolicy)
                await connection.close()
                logger.info("destination check passed", metadata: ["destination": "\(id)"])
                return DestinationCheckResponse(destinationId: id, result: "ok",
                                                message: "\(endpoint.host) accepted the stream key for publishing", elapsedMs: elapsed())
            } catch {
                let (result, message) = switch error {
                case .rejected(let why): ("rejected", "\(endpoint.host) refused to publish: \(DestinationPush.redacting(key, in: why))")
                case .network: ("unreachable", "\(endpoint.host) could not be reached for publishing")
                case .forbidden: ("unreachable", "\(endpoint.host) is a private, loopback or link-local address; Tally only pushes to public servers")
                }
                logger.info("destination check failed", metadata: ["destination": "\(id)", "result": "\(result)",
                                                                   "detail": "\(DestinationPush.redacting(key, in: error.description))"])
                return DestinationCheckResponse(destinationId: id, result: result, message: message, elapsedMs: elapsed())
            }
        }
    }
}
