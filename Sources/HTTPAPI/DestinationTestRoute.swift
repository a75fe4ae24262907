import FluentKit
import Foundation
import Hummingbird
import Rooms
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
    /// `POST /api/broadcasts/{id}/destinations/{destId}/test`: a `DestinationCheck` with the
    /// stored key. Not while live: a second publish of the same key would knock the
    /// program's push off.
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
            let outcome = await DestinationCheck.run(url: destination.rtmpURL, streamKey: key, policy: configuration.outboundPolicy, logger: logger)
            logger.info("destination checked", metadata: ["destination": "\(id)", "result": "\(outcome.verdict)"])
            return DestinationCheckResponse(destinationId: id, result: outcome.verdict.rawValue, message: outcome.message,
                                            elapsedMs: Int(outcome.elapsed / .milliseconds(1)))
        }
    }
}
