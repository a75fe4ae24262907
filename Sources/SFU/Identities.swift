/// Who publishes into a router: a studio participant, an encoder's WHIP publisher, or the
/// program itself. Opaque to the SFU; the room manager chooses the values.
public struct ParticipantID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    public var description: String { rawValue }

    public static func < (left: ParticipantID, right: ParticipantID) -> Bool { left.rawValue < right.rawValue }
}

/// One track of a participant: its publisher and the SDP `mid` it arrived in.
public struct ProducerID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let participant: ParticipantID
    public let mid: String

    public init(participant: ParticipantID, mid: String) {
        self.participant = participant
        self.mid = mid
    }

    /// As logs and the debug API show it.
    public var description: String { "\(participant):\(mid)" }

    public static func < (left: ProducerID, right: ProducerID) -> Bool {
        (left.participant, left.mid) < (right.participant, right.mid)
    }
}
