import FluentKit
import Foundation
import Hummingbird
import Rooms
import SFU
import Store

extension API {
    /// WHIP (RFC 9725) publishing into a broadcast's SFU, and WHEP playing one participant.
    func addWHIPRoutes(to router: Hummingbird.Router<AppContext>) {
        router.post("whip/:broadcast") { request, context in try await publish(request, context) }
        // The host may end anyone's publishing; anyone else only a session their own
        // credential opened (RFC 9725 §4.2).
        router.delete("whip/:broadcast/:participant") { _, context in
            let broadcast = try await memberBroadcast(context)
            let participant = try Validate.uuid(context.parameters.get("participant"), what: "participant")
            let identity: String? = if case .user? = context.identity { nil } else { try context.sessionOwner().identity }
            guard let row = try await Participant.find(participant, on: store.db), row.broadcastID == broadcast.id,
                  await sfu.unpublish(participantID: ParticipantID(participant), identity: identity) else { throw APIError.notFound("participant") }
            return HTTPResponse.Status.ok
        }
        router.post("whep/:broadcast") { request, context in try await playProgram(request, context) }
        router.post("whep/:broadcast/:participant") { request, context in try await play(request, context) }
        router.delete("whep/:broadcast/:participant/:session") { _, context in
            let broadcast = try await memberBroadcast(context)
            let id = try broadcast.requireID().uuidString
            let router = context.parameters.get("participant") == ProgramWatch.participantID.rawValue ? ProgramWatch.routerID(id) : id
            guard await transport.close(sessionID: SessionID(context.parameters.get("session") ?? ""), tag: SFU.playTag(router),
                                     identity: try context.sessionOwner().identity, reason: "closed by the client") else {
                throw APIError.notFound("session")
            }
            return HTTPResponse.Status.ok
        }
    }

    private func publish(_ request: Request, _ context: AppContext) async throws -> Response {
        let broadcast = try await memberBroadcast(context)
        guard broadcast.status != BroadcastStatus.ended.rawValue else {
            throw APIError(.conflict, "broadcast_ended", "an ended broadcast takes no media")
        }
        let owner = try context.sessionOwner()
        let offer = try await Self.readOffer(request)
        let participant = try await participantRow(for: context.identity, broadcast: broadcast)
        let participantID = try participant.requireID()
        let (_, answer) = try await Self.openingSession {
            try await sfu.publish(broadcastID: try broadcast.requireID().uuidString, participantID: ParticipantID(participantID), offer: offer, owner: owner)
        }
        return sdpResponse(answer, location: "/whip/\(try broadcast.requireID().uuidString)/\(participantID.uuidString)", request: request, context: context, identity: owner.identity)
    }

    private func play(_ request: Request, _ context: AppContext) async throws -> Response {
        let broadcast = try await memberBroadcast(context)
        let participant = try Validate.uuid(context.parameters.get("participant"), what: "participant")
        let injectedLoss = try testEgressLoss(request)
        let owner = try context.sessionOwner()
        let offer = try await Self.readOffer(request)
        let broadcastID = try broadcast.requireID().uuidString
        let participantID = ParticipantID(participant)
        do {
            let (session, answer) = try await Self.openingSession {
                try await playAnywhere(broadcastID: broadcastID, participantID: participantID, offer: offer, owner: owner)
            }
            if let injectedLoss { _ = await transport.setEgressLoss(sessionID: session, probability: injectedLoss) }
            return sdpResponse(answer, location: "/whep/\(broadcastID)/\(participantID)/\(session)", request: request, context: context, identity: owner.identity)
        } catch SFUError.notPublishing {
            throw APIError(.notFound, "not_publishing", "that participant is not publishing in this broadcast")
        }
    }

    /// The program, once live, for anyone in the broadcast: H.264 as encoded for every
    /// output and Opus, through the SFU.
    private func playProgram(_ request: Request, _ context: AppContext) async throws -> Response {
        let broadcast = try await memberBroadcast(context)
        guard broadcast.status == BroadcastStatus.live.rawValue else {
            throw APIError(.conflict, "not_live", "the program plays once the broadcast is live")
        }
        let owner = try context.sessionOwner()
        let offer = try await Self.readOffer(request)
        let id = try broadcast.requireID().uuidString
        do {
            let (session, answer) = try await Self.openingSession {
                try await playAnywhere(broadcastID: ProgramWatch.routerID(id), participantID: ProgramWatch.participantID, offer: offer, owner: owner)
            }
            return sdpResponse(answer, location: "/whep/\(id)/\(ProgramWatch.participantID)/\(session)", request: request, context: context, identity: owner.identity)
        } catch SFUError.notPublishing {
            throw APIError(.conflict, "not_live", "the program is starting; try again in a moment", headers: [.retryAfter: "1"])
        }
    }

    /// `?test_egress_loss=0.05`: the share of this subscriber's RTP to drop, for loss-recovery
    /// tests; only with TALLY_TEST_HOOKS=1.
    private func testEgressLoss(_ request: Request) throws -> Double? {
        guard let text = request.uri.queryParameters.get("test_egress_loss") else { return nil }
        guard transport.allowsLossInjection else {
            throw APIError(.badRequest, "test_hooks_disabled", "test_egress_loss needs TALLY_TEST_HOOKS=1")
        }
        guard let probability = Double(text), (0...1).contains(probability) else {
            throw APIError(.badRequest, "invalid_test_egress_loss", "test_egress_loss must be a number from 0 to 1")
        }
        return probability
    }

    /// A publisher is a participant of the broadcast: the host for its owner, a guest for an invite.
    private func participantRow(for identity: Identity?, broadcast: Broadcast) async throws -> Participant {
        switch identity {
        case .user(let userID, _, _, _)?:
            let name = try await User.find(userID, on: store.db)?.name ?? "Host"
            let participant = Participant(broadcastID: try broadcast.requireID(), userID: userID, name: name, role: .host)
            try await rooms.admit(participant)
            return participant
        case .guest(_, let inviteID, let name)?:
            return try await rooms.whipParticipant(broadcast: broadcast, inviteID: inviteID, name: name)
        case .operator?:
            throw APIError(.forbidden, "account_required", "the operator's token publishes nothing; sign in with an account")
        case nil:
            throw APIError.unauthorized
        }
    }
}
