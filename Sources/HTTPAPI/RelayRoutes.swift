import Foundation
import Hummingbird
import NIOCore
import Relay
import SDP
import SFU

extension API {
    static let relaysPath = "/api/relays"

    /// `POST /api/relays`, for other nodes of the deployment only (the node token): opens a
    /// relay of one participant's tracks toward the asking node (see `RelayHub`). Its own
    /// JSON keys, read and written without the API's snake-case conversion, since nodes speak
    /// it to each other.
    func addRelayRoutes(to router: Hummingbird.Router<AppContext>) {
        router.post(RouterPath(Self.relaysPath)) { request, context -> Response in
            guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
                  nodeToken.matches(String(header.dropFirst("Bearer ".count))) else {
                throw APIError(.unauthorized, "node_token_required", "only another node of this deployment may open a relay")
            }
            let body = try await request.body.collect(upTo: TallyJSON.maxBodyBytes)
            let relayRequest: RelayRequest
            do {
                relayRequest = try JSONDecoder().decode(RelayRequest.self, from: Data(body.readableBytesView))
            } catch {
                throw APIError(.badRequest, "invalid_json", "the body is not a relay request")
            }
            _ = try Validate.uuid(relayRequest.broadcastID, what: "broadcast")
            _ = try Validate.uuid(relayRequest.participantID, what: "participant")
            let answer: RelayAnswer
            do {
                answer = try await relays.openOutlet(relayRequest)
            } catch let refusal as RelayRefusal {
                switch refusal {
                case .notPublishing: throw APIError(.notFound, "not_publishing", refusal.description)
                case .relayIDInUse: throw APIError(.conflict, "relay_id_in_use", refusal.description)
                case .invalidRequest: throw APIError(.badRequest, "invalid_relay_request", refusal.description)
                case .tooManyRelays: throw APIError(.tooManyRequests, "too_many_relays", refusal.description)
                case .notRunning: throw APIError(.serviceUnavailable, "relay_closed", refusal.description)
                }
            }
            var buffer = ByteBuffer()
            buffer.writeBytes(try JSONEncoder().encode(answer))
            return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: buffer))
        }
    }

    /// Plays a participant's media from this node's router, relaying it here first when they
    /// publish on another node of the deployment.
    func playAnywhere(broadcastID: String, participantID: ParticipantID, offer: SessionDescription,
                      owner: SessionOwner) async throws -> (sessionID: SessionID, answer: String) {
        do {
            return try await sfu.play(broadcastID: broadcastID, participantID: participantID, offer: offer, owner: owner)
        } catch SFUError.notPublishing {
            guard await remoteMedia.bringHere(broadcastID: broadcastID, participantID: participantID) else { throw SFUError.notPublishing(participantID) }
            return try await sfu.play(broadcastID: broadcastID, participantID: participantID, offer: offer, owner: owner)
        }
    }
}
