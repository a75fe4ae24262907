import Foundation
import Hummingbird
import Rooms
import SFU

/// One open WebRTC transport of a broadcast, as its owner may see it.
struct TransportResponse: Encodable {
    var session: String
    /// `receive`: a publisher's media coming in; `send`: a player's going out.
    var direction: String
    /// `program` for players of the live program, else `participants`.
    var router: String
    var bitrateBps: Double
    var lossRatio: Double
    var estimateBps: Double?
    var roundTripSeconds: Double?
    var layers: [String: Int]
}

/// What the live program decodes of one participant on its stage.
struct DecodedTileResponse: Encodable {
    var participantId: String
    var width: Int
    var height: Int
}

struct BroadcastDebugResponse: APIResponse {
    var transports: [TransportResponse]
    /// On the node running the program: the size each participant on stage is decoded at,
    /// which shows the simulcast layer the program takes for their tile.
    var decodedTiles: [DecodedTileResponse]
}

extension API {
    /// `GET /api/broadcasts/{id}/debug`: each open transport's figures, for the broadcast's
    /// owner. /metrics shows only their sums, so that session ids stay private.
    func addBroadcastDebugRoute(to router: Hummingbird.Router<AppContext>) {
        router.get("api/broadcasts/:id/debug") { _, context -> BroadcastDebugResponse in
            let broadcast = try await ownedBroadcast(context.parameters.get("id"), context: context)
            let id = try broadcast.requireID().uuidString
            let entries = TransportBoard.transports(broadcast: id).map { (router: "participants", figures: $0) }
                + TransportBoard.transports(broadcast: ProgramWatch.routerID(id)).map { (router: "program", figures: $0) }
            let decoded = await rooms.programs.decodedSizes(try broadcast.requireID()) ?? [:]
            let tiles = decoded.map { DecodedTileResponse(participantId: $0.key.rawValue, width: $0.value.width, height: $0.value.height) }
                .sorted { $0.participantId < $1.participantId }
            return BroadcastDebugResponse(transports: entries.map { entry in
                let figures = entry.figures
                return TransportResponse(session: figures.session, direction: figures.direction.rawValue, router: entry.router,
                                         bitrateBps: figures.bitrate, lossRatio: figures.lossRatio, estimateBps: figures.estimate,
                                         roundTripSeconds: figures.roundTripSeconds, layers: figures.layers)
            }, decodedTiles: tiles)
        }
    }
}
