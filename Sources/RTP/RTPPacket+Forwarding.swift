/// What forwarding does to packets: new SSRCs, and retransmissions in RTX form.
extension RTPPacket {
    /// The packet's bytes with another SSRC; everything else untouched.
    public func withSSRC(_ ssrc: UInt32) -> [UInt8] {
        var out = bytes
        out[8] = UInt8(ssrc >> 24)
        out[9] = UInt8((ssrc >> 16) & 0xFF)
        out[10] = UInt8((ssrc >> 8) & 0xFF)
        out[11] = UInt8(ssrc & 0xFF)
        return out
    }

    /// This packet as an RTX retransmission (RFC 4588 §4): the RTX payload type, SSRC and
    /// sequence number, the original sequence number in front of the payload, no padding.
    public func retransmission(payloadType: UInt8, ssrc: UInt32, sequenceNumber: UInt16) -> [UInt8] {
        rewritten(payloadType: payloadType, sequenceNumber: sequenceNumber, ssrc: ssrc,
                  prefix: [UInt8(self.sequenceNumber >> 8), UInt8(self.sequenceNumber & 0xFF)], payload: payload)
    }

    /// Overwrites the value of header extension `id` in serialized packet `bytes` when it is
    /// present with the same length; false otherwise. Used to give a resent packet its own
    /// transport-wide sequence number.
    @discardableResult
    public static func overwriteExtension(id: UInt8, with value: [UInt8], in bytes: inout [UInt8]) -> Bool {
        guard let packet = try? RTPPacket(bytes), let range = packet.extensionValue(id: id).map({ $0.startIndex..<$0.endIndex }),
              range.count == value.count else { return false }
        bytes.replaceSubrange(range, with: value)
        return true
    }

    /// The original packet inside this RTX packet, restored to the media payload type and SSRC.
    public func unwrappingRetransmission(payloadType: UInt8, ssrc: UInt32) -> RTPPacket? {
        guard payload.count > 2 else { return nil }
        let original = UInt16(payload[payload.startIndex]) << 8 | UInt16(payload[payload.startIndex + 1])
        return try? RTPPacket(rewritten(payloadType: payloadType, sequenceNumber: original, ssrc: ssrc, prefix: [], payload: payload.dropFirst(2)))
    }

    /// The header with a new payload type, sequence number and SSRC (marker, timestamp and
    /// extensions kept, padding dropped) in front of `prefix` and `payload`.
    func rewritten(payloadType: UInt8, sequenceNumber: UInt16, ssrc: UInt32, prefix: [UInt8], payload: ArraySlice<UInt8>) -> [UInt8] {
        var out = Array(bytes[0..<headerLength])
        out.reserveCapacity(headerLength + prefix.count + payload.count)
        out[0] &= ~0x20
        out[1] = (out[1] & 0x80) | (payloadType & 0x7F)
        out[2] = UInt8(sequenceNumber >> 8)
        out[3] = UInt8(sequenceNumber & 0xFF)
        out[8] = UInt8(ssrc >> 24)
        out[9] = UInt8((ssrc >> 16) & 0xFF)
        out[10] = UInt8((ssrc >> 8) & 0xFF)
        out[11] = UInt8(ssrc & 0xFF)
        out.append(contentsOf: prefix)
        out.append(contentsOf: payload)
        return out
    }
}
