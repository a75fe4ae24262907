/// The header extensions Tally negotiates, by the URI SDP's `a=extmap` names them with.
public enum RTPHeaderExtensionURI {
    /// RFC 8843 §15: which m-line (transceiver) a packet belongs to.
    public static let mid = "urn:ietf:params:rtp-hdrext:sdes:mid"
    /// RFC 8852: the simulcast layer (`a=rid`) of a packet.
    public static let rid = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
    /// RFC 8852: the layer a retransmission (RTX) packet repairs.
    public static let repairedRID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
    /// 24-bit 6.18 fixed-point send time, for receive-side bandwidth estimation.
    public static let absSendTime = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
    /// A transport-wide sequence number for transport-cc feedback.
    public static let transportWideCC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
    /// RFC 6464: voice activity and level of an audio packet.
    public static let audioLevel = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
}

/// Decoders for the extension values, all total: a malformed value reads as nil.
public enum RTPHeaderExtensionValue {
    /// mid and rid are short ASCII tokens.
    public static func token(_ value: ArraySlice<UInt8>?) -> String? {
        guard let value, !value.isEmpty, value.count <= 255 else { return nil }
        let trimmed = value.prefix { $0 != 0 }
        guard !trimmed.isEmpty, trimmed.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        return String(decoding: trimmed, as: UTF8.self)
    }

    /// abs-send-time: seconds in 6.18 fixed point, wrapping every 64 s.
    public static func absSendTime(_ value: ArraySlice<UInt8>?) -> UInt32? {
        guard let value, value.count == 3 else { return nil }
        let start = value.startIndex
        return UInt32(value[start]) << 16 | UInt32(value[start + 1]) << 8 | UInt32(value[start + 2])
    }

    public static func transportSequence(_ value: ArraySlice<UInt8>?) -> UInt16? {
        guard let value, value.count == 2 else { return nil }
        return UInt16(value[value.startIndex]) << 8 | UInt16(value[value.startIndex + 1])
    }

    /// RFC 6464 §3: the V bit, and the level in -dBov (0 loudest, 127 silence).
    public static func audioLevel(_ value: ArraySlice<UInt8>?) -> (voice: Bool, level: UInt8)? {
        guard let value, let first = value.first else { return nil }
        return (first & 0x80 != 0, first & 0x7F)
    }

    public static func encodeAbsSendTime(_ sixEighteen: UInt32) -> [UInt8] {
        [UInt8((sixEighteen >> 16) & 0xFF), UInt8((sixEighteen >> 8) & 0xFF), UInt8(sixEighteen & 0xFF)]
    }

    public static func encodeTransportSequence(_ sequence: UInt16) -> [UInt8] {
        [UInt8(sequence >> 8), UInt8(sequence & 0xFF)]
    }
}
