import Foundation
import Outputs
import SFU
import Store

/// Events published on a broadcast's room channel for the studios' signaling (on whichever
/// node each runs), as `{"event": name, "data": {...}}`.
public enum RoomEvent {
    private struct Envelope<Payload: Encodable>: Encodable {
        var event: String
        var data: Payload
    }

    private struct ActiveSpeaker: Encodable {
        var participant_id: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(participant_id, forKey: .participant_id)
        }

        enum CodingKeys: CodingKey { case participant_id }
    }

    private struct SimulcastLayers: Encodable {
        var participant_id: String
        var mid: String
        /// rid → whether the browser should keep that encoding active.
        var layers: [String: Bool]
    }

    /// The host rearranged the stage: layout, who is on it in order, banner (null for none).
    public static func stageUpdated(_ stage: Stage) -> String? {
        encode("stage-updated", StageBody(stage))
    }

    /// A participant's media reached the SFU and can be played (WHIP or the studio).
    public static func mediaPublished(_ participant: ParticipantID) -> String? {
        struct Published: Encodable { var participant_id: String }
        return encode("media-published", Published(participant_id: participant.rawValue))
    }

    /// A destination's push changed state: connecting, live, reconnecting, failed, stopped.
    public static func destinationStatus(_ destination: String, _ state: DestinationState) -> String? {
        struct Status: Encodable {
            var destination_id: String
            var status: String
            var reason: String?
            var retry_in: Double?
        }
        var retry: Double?
        if case .reconnecting(_, let seconds, _) = state { retry = seconds }
        return encode("destination-status", Status(destination_id: destination, status: state.name, reason: state.reason, retry_in: retry))
    }

    /// The broadcast went live or ended.
    public static func broadcastStatus(_ broadcast: Broadcast) -> String? {
        struct Status: Encodable {
            var broadcast_id: UUID
            var status: String
            var at: Date?
        }
        guard let id = broadcast.id else { return nil }
        let live = broadcast.status == BroadcastStatus.live.rawValue
        return encode(live ? "broadcast-started" : "broadcast-ended",
                      Status(broadcast_id: id, status: broadcast.status, at: live ? broadcast.startedAt : broadcast.endedAt))
    }

    /// Someone came into the studio (a person, or a screen share with `screen_of`).
    public static func participantJoined(_ participant: ParticipantInfo) -> String? {
        struct Joined: Encodable { var participant: ParticipantInfo }
        return encode("participant-joined", Joined(participant: participant))
    }

    /// Someone left the studio, or their grace period ran out.
    public static func participantLeft(_ participant: UUID) -> String? {
        struct Left: Encodable { var participant_id: String }
        return encode("participant-left", Left(participant_id: participant.uuidString))
    }

    /// A participant turned their camera or microphone on or off.
    public static func participantStatusUpdated(_ participant: ParticipantInfo) -> String? {
        struct Updated: Encodable { var participant: ParticipantInfo }
        return encode("participant-status-updated", Updated(participant: participant))
    }

    /// One chat line.
    public static func chatMessage(from participant: UUID, name: String, text: String, at time: Date) -> String? {
        struct Line: Encodable {
            var participant_id: String
            var name: String
            var text: String
            var sent_at: Date
        }
        return encode("chat-message", Line(participant_id: participant.uuidString, name: name, text: text, sent_at: time))
    }

    /// The host asks `target` to mute; only the target's socket delivers it.
    public static func muteRequest(target: String, kind: String, from host: String) -> String? {
        struct Request: Encodable {
            var target: String
            var kind: String
            var from: String
        }
        return encode("mute-request", Request(target: target, kind: kind, from: host))
    }

    /// The loudest participant on stage changed; nil when nobody speaks.
    public static func activeSpeaker(_ participant: ParticipantID?) -> String? {
        encode("active-speaker", ActiveSpeaker(participant_id: participant?.rawValue))
    }

    /// A publisher should turn simulcast encodings on or off: layers nobody watches cost its
    /// CPU and uplink for nothing.
    public static func simulcastLayers(_ layers: SFU.PublisherLayers) -> String? {
        encode("simulcast-layers", SimulcastLayers(participant_id: layers.participantID.rawValue, mid: layers.mid, layers: layers.send))
    }

    private static func encode(_ name: String, _ payload: some Encodable) -> String? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return (try? encoder.encode(Envelope(event: name, data: payload))).map { String(decoding: $0, as: UTF8.self) }
    }
}

extension ParticipantID {
    /// A studio participant's id in the SFU: its row's id.
    public init(_ row: UUID) {
        self.init(row.uuidString)
    }
}
