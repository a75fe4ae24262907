import MediaCore

/// Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01
/// §3.1): for a run of transport sequence numbers, which arrived and when.
///
///      0                   1                   2                   3
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |V=2|P|  FMT=15 |    PT=205     |           length              |
///     |                     SSRC of packet sender                     |
///     |                      SSRC of media source                     |
///     |      base sequence number     |      packet status count      |
///     |                 reference time                | fb pkt. count |
///     |          packet chunk         |         packet chunk          |
///     .                                                               .
///     |         packet chunk          |  recv delta   |  recv delta   |
///     .                                                               .
public struct TransportFeedback: Sendable, Equatable {
    /// One packet's fate. `delta` is in 250 µs units from the previous received packet (or
    /// the reference time for the first); nil when the packet did not arrive.
    public struct PacketStatus: Sendable, Equatable {
        public var sequenceNumber: UInt16
        public var delta: Int16?

        public init(sequenceNumber: UInt16, delta: Int16?) {
            self.sequenceNumber = sequenceNumber
            self.delta = delta
        }
    }

    public var senderSSRC: UInt32
    public var mediaSSRC: UInt32
    public var baseSequenceNumber: UInt16
    /// In multiples of 64 ms, 24-bit signed.
    public var referenceTime: Int32
    public var feedbackCount: UInt8
    public var packets: [PacketStatus]

    public init(senderSSRC: UInt32, mediaSSRC: UInt32, baseSequenceNumber: UInt16, referenceTime: Int32, feedbackCount: UInt8, packets: [PacketStatus]) {
        self.senderSSRC = senderSSRC
        self.mediaSSRC = mediaSSRC
        self.baseSequenceNumber = baseSequenceNumber
        self.referenceTime = referenceTime
        self.feedbackCount = feedbackCount
        self.packets = packets
    }

    /// Symbols: 0 not received, 1 received with a small (1-byte) delta, 2 with a large one.
    private static func symbol(_ status: PacketStatus) -> UInt8 {
        guard let delta = status.delta else { return 0 }
        return (0...255).contains(delta) ? 1 : 2
    }

    static func parse(senderSSRC: UInt32, mediaSSRC: UInt32, _ body: ArraySlice<UInt8>) throws(RTCPError) -> TransportFeedback {
        var reader = ByteReader(body)
        guard let base = reader.uint16(), let count = reader.uint16(), let reference = reader.uint24(), let feedbackCount = reader.uint8() else {
            throw .malformed("transport-cc header")
        }
        var symbols: [UInt8] = []
        symbols.reserveCapacity(Int(count))
        while symbols.count < Int(count) {
            guard let chunk = reader.uint16() else { throw .malformed("transport-cc chunks") }
            let remaining = Int(count) - symbols.count
            if chunk & 0x8000 == 0 {
                let symbol = UInt8((chunk >> 13) & 0x3)
                let run = Int(chunk & 0x1FFF)
                guard run > 0 else { throw .malformed("transport-cc empty run") }
                symbols.append(contentsOf: repeatElement(symbol, count: min(run, remaining)))
            } else if chunk & 0x4000 == 0 {
                for bit in (0..<14).reversed().prefix(remaining) { symbols.append(UInt8((chunk >> bit) & 0x1)) }
            } else {
                for pair in (0..<7).reversed().prefix(remaining) { symbols.append(UInt8((chunk >> (pair * 2)) & 0x3)) }
            }
        }
        var packets: [PacketStatus] = []
        packets.reserveCapacity(symbols.count)
        for (index, symbol) in symbols.enumerated() {
            let sequence = base &+ UInt16(truncatingIfNeeded: index)
            switch symbol {
            case 0:
                packets.append(PacketStatus(sequenceNumber: sequence, delta: nil))
            case 1:
                guard let delta = reader.uint8() else { throw .malformed("transport-cc deltas") }
                packets.append(PacketStatus(sequenceNumber: sequence, delta: Int16(delta)))
            case 2:
                guard let delta = reader.uint16() else { throw .malformed("transport-cc deltas") }
                packets.append(PacketStatus(sequenceNumber: sequence, delta: Int16(bitPattern: delta)))
            default:
                throw .malformed("transport-cc reserved symbol")
            }
        }
        let signedReference = reference & 0x80_0000 != 0 ? Int32(reference) - 0x100_0000 : Int32(reference)
        return TransportFeedback(senderSSRC: senderSSRC, mediaSSRC: mediaSSRC, baseSequenceNumber: base,
                                 referenceTime: signedReference, feedbackCount: feedbackCount, packets: packets)
    }

    /// The feedback body after the two SSRCs: run-length chunks where a symbol repeats,
    /// two-bit status vectors otherwise.
    func serializeBody(into out: inout [UInt8]) {
        out.appendUInt16(baseSequenceNumber)
        out.appendUInt16(UInt16(packets.count))
        let reference = UInt32(bitPattern: referenceTime) & 0xFF_FFFF
        out.append(UInt8(reference >> 16))
        out.append(UInt8((reference >> 8) & 0xFF))
        out.append(UInt8(reference & 0xFF))
        out.append(feedbackCount)
        let symbols = packets.map(Self.symbol)
        var index = 0
        while index < symbols.count {
            var run = 1
            while index + run < symbols.count, symbols[index + run] == symbols[index], run < 0x1FFF { run += 1 }
            if run >= 7 || index + run == symbols.count {
                out.appendUInt16(UInt16(symbols[index]) << 13 | UInt16(run))
                index += run
            } else {
                var chunk: UInt16 = 0xC000
                for slot in 0..<7 {
                    let symbol = index + slot < symbols.count ? UInt16(symbols[index + slot]) : 0
                    chunk |= symbol << UInt16((6 - slot) * 2)
                }
                out.appendUInt16(chunk)
                index += 7
            }
        }
        for packet in packets {
            guard let delta = packet.delta else { continue }
            if (0...255).contains(delta) {
                out.append(UInt8(delta))
            } else {
                out.appendUInt16(UInt16(bitPattern: delta))
            }
        }
    }
}
