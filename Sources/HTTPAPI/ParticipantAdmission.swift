import FluentKit
import Rooms
import Store

extension API {
    /// Saves a new participant once the broadcast and the invite behind it have room: an
    /// invite link brings in at most `StageRules.maxPerInvite` people over a broadcast's
    /// life, and a broadcast gathers at most `StageRules.maxParticipantRecords`, so no
    /// guest can fill the store or get around the studio's size by joining over and over.
    func admit(_ participant: Participant) async throws {
        let broadcast = participant.broadcastID
        let total = try await Participant.query(on: store.db).filter(\.$broadcastID == broadcast).count()
        guard total < StageRules.maxParticipantRecords else {
            throw APIError(.tooManyRequests, "too_many_participants",
                           "this broadcast has had \(StageRules.maxParticipantRecords) participants; start a new broadcast")
        }
        if let invite = participant.inviteID {
            let used = try await Participant.query(on: store.db).filter(\.$broadcastID == broadcast).filter(\.$inviteID == invite).count()
            guard used < StageRules.maxPerInvite else {
                throw APIError(.tooManyRequests, "invite_exhausted",
                               "this invite link has let in \(StageRules.maxPerInvite) participants; ask the host for a new one")
            }
        }
        try await participant.create(on: store.db)
    }

    /// The participant a guest's WHIP publish stands for: the first one its invite brought
    /// in, so publishing again replaces that participant's media instead of adding people.
    func whipParticipant(broadcast: Broadcast, inviteID: String, name: String?) async throws -> Participant {
        if let existing = try await Participant.query(on: store.db).filter(\.$broadcastID == (try broadcast.requireID())).filter(\.$inviteID == inviteID)
            .sort(\.$createdAt).first() {
            return existing
        }
        let participant = Participant(broadcastID: try broadcast.requireID(), userID: nil, name: name ?? "Guest", role: .guest, inviteID: inviteID)
        try await admit(participant)
        return participant
    }
}
