import Cluster
import Foundation
import Hummingbird
import NIOCore
import OutboundHTTP
import Relay
import Rooms
import SDP
import SFU
import Store

extension API {
    /// Routes only other nodes of the deployment call, with the node token.
    static let peerPrefix = "/api/node/"

    /// A request from another node of the deployment, or a 401.
    private func requireNode(_ request: Request) throws {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
              nodeToken.matches(String(header.dropFirst("Bearer ".count))) else {
            throw APIError(.unauthorized, "node_token_required", "only another node of this deployment may call this")
        }
    }

    /// `POST /api/node/relays` opens a relay of one participant's tracks toward the asking
    /// node (see `RelayHub`), in JSON keys of its own (read and written without the API's
    /// snake-case conversion, since nodes speak it to each other). `POST
    /// /api/node/programs/{broadcast}/start` runs a broadcast's program here, within this
    /// node's limits: another node's placement chose this one.
    func addPeerRoutes(to router: Hummingbird.Router<AppContext>) {
        router.post(RouterPath(Self.peerPrefix + "programs/:broadcast/start")) { request, context -> HTTPResponse.Status in
            try requireNode(request)
            let id = try Validate.uuid(context.parameters.get("broadcast"), what: "broadcast")
            guard let broadcast = try await Broadcast.find(id, on: store.db) else { throw APIError.notFound("broadcast") }
            do {
                try await rooms.programs.startHere(broadcast)
            } catch let refusal as ProgramDirector.Refusal {
                throw APIError(RoomError(refusal))
            }
            return .ok
        }
        router.post(RouterPath(Self.peerPrefix + "relays")) { request, context -> Response in
            try requireNode(request)
            let body = try await request.body.collect(upTo: TallyJSON.maxBodyBytes)
            let relayRequest: RelayRequest
            do {
                relayRequest = try JSONDecoder().decode(RelayRequest.self, from: Data(body.readableBytesView))
            } catch {
                throw APIError(.badRequest, "invalid_json", "the body is not a relay request")
            }
            // Router and participant ids: a broadcast's and a participant's UUIDs, or a program's own.
            for (value, what) in [(relayRequest.broadcastID, "broadcast_id"), (relayRequest.participantID, "participant_id")] {
                guard (1...64).contains(value.utf8.count), value.utf8.allSatisfy({ $0 == 0x3A || $0 == 0x2D || (0x30...0x39).contains($0)
                    || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }) else {
                    throw APIError(.badRequest, "invalid_relay_request", "\(what) is not a router or participant id")
                }
            }
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

/// Placement over the deployment's nodes: their heartbeats say how loaded each is, and
/// `POST /api/node/programs/{broadcast}/start` with the node token asks one to take a program.
struct PeerPlacement: ProgramPlacement {
    let directory: NodeDirectory
    let client: OutboundHTTPClient
    let token: NodeToken

    func nodes() async -> [NodeRecord] {
        (try? await directory.nodes()) ?? []
    }

    func startProgram(_ broadcastID: UUID, on node: NodeRecord) async throws {
        guard let base = URL(string: node.url),
              let url = URL(string: "\(API.peerPrefix)programs/\(broadcastID.uuidString)/start", relativeTo: base) else {
            throw ProgramDirector.Refusal.remote(code: "node_unreachable", message: "node \(node.id) has no usable URL")
        }
        let response: OutboundHTTPResponse
        do {
            response = try await client.send(OutboundHTTPRequest(method: .POST, url: url.absoluteURL, headers: [("Authorization", "Bearer \(token.value)")]))
        } catch {
            throw ProgramDirector.Refusal.remote(code: "node_unreachable", message: "node \(node.id) did not answer: \(error)")
        }
        guard response.status != .ok else { return }
        let refusal = try? JSONDecoder().decode(ErrorBody.self, from: Data(response.body))
        throw ProgramDirector.Refusal.remote(code: refusal?.error.code ?? "node_refused",
                                            message: refusal?.error.message ?? "node \(node.id) answered \(response.status.code)")
    }

    private struct ErrorBody: Decodable {
        struct Detail: Decodable {
            var code: String
            var message: String
        }
        var error: Detail
    }
}
