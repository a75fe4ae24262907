/// One packet of a compound RTCP datagram (RFC 3550 §6; feedback RFC 4585 and RFC 5104).
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |V=2|P| RC/FMT  |      PT       |             length            |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
public enum RTCPPacket: Sendable, Equatable {
    case senderReport(SenderReport)
    case receiverReport(ReceiverReport)
    case sourceDescription([SourceDescriptionChunk])
    case goodbye(Goodbye)
    case nack(GenericNACK)
    case transportFeedback(TransportFeedback)
    case pictureLossIndication(senderSSRC: UInt32, mediaSSRC: UInt32)
    case fullIntraRequest(FullIntraRequest)
    case remb(REMB)
    /// A packet type or feedback format Tally does not act on; kept so compounds still parse.
    case other(packetType: UInt8, count: UInt8, body: [UInt8])

    public enum PacketType {
        public static let senderReport: UInt8 = 200
        public static let receiverReport: UInt8 = 201
        public static let sourceDescription: UInt8 = 202
        public static let goodbye: UInt8 = 203
        public static let transportFeedback: UInt8 = 205
        public static let payloadFeedback: UInt8 = 206
    }
}

public enum RTCPError: Error, Equatable, CustomStringConvertible {
    case tooShort(Int)
    case badVersion(UInt8)
    case lengthOverrun(declared: Int, available: Int)
    case malformed(String)

    public var description: String {
        switch self {
        case .tooShort(let count): "\(count) bytes is too short for RTCP"
        case .badVersion(let version): "RTCP version \(version), expected 2"
        case .lengthOverrun(let declared, let available): "RTCP length says \(declared) bytes, \(available) remain"
        case .malformed(let what): "malformed RTCP \(what)"
        }
    }
}

/// A reception report block (RFC 3550 §6.4.1), the same in SR and RR.
public struct ReceptionReport: Sendable, Equatable {
    public var ssrc: UInt32
    public var fractionLost: UInt8
    /// 24-bit signed on the wire.
    public var cumulativeLost: Int32
    public var extendedHighestSequence: UInt32
    public var jitter: UInt32
    /// Middle 32 bits of the NTP time of the last SR received from `ssrc`.
    public var lastSenderReport: UInt32
    /// In 1/65536 s.
    public var delaySinceLastSenderReport: UInt32

    public init(ssrc: UInt32, fractionLost: UInt8, cumulativeLost: Int32, extendedHighestSequence: UInt32, jitter: UInt32, lastSenderReport: UInt32, delaySinceLastSenderReport: UInt32) {
        self.ssrc = ssrc
        self.fractionLost = fractionLost
        self.cumulativeLost = cumulativeLost
        self.extendedHighestSequence = extendedHighestSequence
        self.jitter = jitter
        self.lastSenderReport = lastSenderReport
        self.delaySinceLastSenderReport = delaySinceLastSenderReport
    }
}

/// RFC 3550 §6.4.1
public struct SenderReport: Sendable, Equatable {
    public var ssrc: UInt32
    public var ntpTimestamp: UInt64
    public var rtpTimestamp: UInt32
    public var packetCount: UInt32
    public var octetCount: UInt32
    public var reports: [ReceptionReport]

    public init(ssrc: UInt32, ntpTimestamp: UInt64, rtpTimestamp: UInt32, packetCount: UInt32, octetCount: UInt32, reports: [ReceptionReport] = []) {
        self.ssrc = ssrc
        self.ntpTimestamp = ntpTimestamp
        self.rtpTimestamp = rtpTimestamp
        self.packetCount = packetCount
        self.octetCount = octetCount
        self.reports = reports
    }
}

/// RFC 3550 §6.4.2
public struct ReceiverReport: Sendable, Equatable {
    public var ssrc: UInt32
    public var reports: [ReceptionReport]

    public init(ssrc: UInt32, reports: [ReceptionReport] = []) {
        self.ssrc = ssrc
        self.reports = reports
    }
}

/// RFC 3550 §6.5: one source's items; Tally reads and writes CNAME (type 1).
public struct SourceDescriptionChunk: Sendable, Equatable {
    public var ssrc: UInt32
    public var items: [(type: UInt8, text: String)]

    public init(ssrc: UInt32, cname: String) {
        self.ssrc = ssrc
        items = [(1, cname)]
    }

    init(ssrc: UInt32, items: [(type: UInt8, text: String)]) {
        self.ssrc = ssrc
        self.items = items
    }

    public var cname: String? { items.first { $0.type == 1 }?.text }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.ssrc == rhs.ssrc && lhs.items.map(\.type) == rhs.items.map(\.type) && lhs.items.map(\.text) == rhs.items.map(\.text)
    }
}

/// RFC 3550 §6.6
public struct Goodbye: Sendable, Equatable {
    public var ssrcs: [UInt32]
    public var reason: String?

    public init(ssrcs: [UInt32], reason: String? = nil) {
        self.ssrcs = ssrcs
        self.reason = reason
    }
}

/// RFC 4585 §6.2.1: lost packets as (PID, BLP) pairs.
public struct GenericNACK: Sendable, Equatable {
    public var senderSSRC: UInt32
    public var mediaSSRC: UInt32
    public var pairs: [(packetID: UInt16, lostBitmask: UInt16)]

    public init(senderSSRC: UInt32, mediaSSRC: UInt32, lost: some Sequence<UInt16>) {
        self.senderSSRC = senderSSRC
        self.mediaSSRC = mediaSSRC
        pairs = []
        for sequence in lost {
            if let last = pairs.last {
                let distance = sequence &- last.packetID
                if distance >= 1 && distance <= 16 {
                    pairs[pairs.count - 1].lostBitmask |= 1 << (distance - 1)
                    continue
                }
            }
            pairs.append((sequence, 0))
        }
    }

    init(senderSSRC: UInt32, mediaSSRC: UInt32, pairs: [(packetID: UInt16, lostBitmask: UInt16)]) {
        self.senderSSRC = senderSSRC
        self.mediaSSRC = mediaSSRC
        self.pairs = pairs
    }

    /// Every sequence number the NACK asks for, in order.
    public var lostSequenceNumbers: [UInt16] {
        var lost: [UInt16] = []
        for pair in pairs {
            lost.append(pair.packetID)
            for bit in 0..<16 where pair.lostBitmask & (1 << UInt16(bit)) != 0 {
                lost.append(pair.packetID &+ UInt16(bit + 1))
            }
        }
        return lost
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.senderSSRC == rhs.senderSSRC && lhs.mediaSSRC == rhs.mediaSSRC && lhs.lostSequenceNumbers == rhs.lostSequenceNumbers
    }
}

/// RFC 5104 §4.3.1: a keyframe request with a per-target command sequence number.
public struct FullIntraRequest: Sendable, Equatable {
    public var senderSSRC: UInt32
    public var entries: [(ssrc: UInt32, sequenceNumber: UInt8)]

    public init(senderSSRC: UInt32, entries: [(ssrc: UInt32, sequenceNumber: UInt8)]) {
        self.senderSSRC = senderSSRC
        self.entries = entries
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.senderSSRC == rhs.senderSSRC && lhs.entries.map(\.ssrc) == rhs.entries.map(\.ssrc)
            && lhs.entries.map(\.sequenceNumber) == rhs.entries.map(\.sequenceNumber)
    }
}

/// draft-alvestrand-rmcat-remb: the receiver's estimate of the bitrate it can take.
public struct REMB: Sendable, Equatable {
    public var senderSSRC: UInt32
    public var bitrate: UInt64
    public var ssrcs: [UInt32]

    public init(senderSSRC: UInt32, bitrate: UInt64, ssrcs: [UInt32]) {
        self.senderSSRC = senderSSRC
        self.bitrate = bitrate
        self.ssrcs = ssrcs
    }
}
