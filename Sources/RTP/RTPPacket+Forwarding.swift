import MediaCore

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
        var out = Array(bytes[0..<headerLength])
        out.reserveCapacity(headerLength + 2 + payloadRange.count)
        out[0] &= ~0x20
        out[1] = (out[1] & 0x80) | (payloadType & 0x7F)
        out[2] = UInt8(sequenceNumber >> 8)
        out[3] = UInt8(sequenceNumber & 0xFF)
        out[8] = UInt8(ssrc >> 24)
        out[9] = UInt8((ssrc >> 16) & 0xFF)
        out[10] = UInt8((ssrc >> 8) & 0xFF)
        out[11] = UInt8(ssrc & 0xFF)
        out.appendUInt16(self.sequenceNumber)
        out.append(contentsOf: payload)
        return out
    }
}
