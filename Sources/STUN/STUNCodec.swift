import Crypto

/// Why bytes are not a usable STUN message. Every malformed input ends here, never in a trap.
public enum STUNError: Error, Equatable, CustomStringConvertible {
    case tooShort(Int)
    case notSTUN
    case lengthMismatch(declared: Int, actual: Int)
    case unalignedLength(Int)
    case truncatedAttribute(STUNAttributeType)
    case attributeAfterFingerprint
    case badFingerprint
    case badIntegrity
    case missingIntegrity

    public var description: String {
        switch self {
        case .tooShort(let count): "\(count) bytes is too short for STUN"
        case .notSTUN: "not a STUN message (leading bits or magic cookie)"
        case .lengthMismatch(let declared, let actual): "STUN length says \(declared) bytes of attributes, \(actual) arrived"
        case .unalignedLength(let length): "STUN length \(length) is not a multiple of 4"
        case .truncatedAttribute(let type): "STUN attribute \(type) runs past the end of the message"
        case .attributeAfterFingerprint: "STUN attribute after FINGERPRINT"
        case .badFingerprint: "STUN FINGERPRINT does not match"
        case .badIntegrity: "STUN MESSAGE-INTEGRITY does not match"
        case .missingIntegrity: "STUN message has no MESSAGE-INTEGRITY"
        }
    }
}

/// A message as it arrived: parsed, with what integrity and fingerprint checks need.
public struct ReceivedSTUNMessage: Sendable {
    public var message: STUNMessage
    /// The whole message as received.
    public var raw: [UInt8]
    /// Where MESSAGE-INTEGRITY's attribute header starts, when present.
    var integrityOffset: Int?
    public var hasFingerprint: Bool

    /// Checks MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5) with `key`: the ICE password
    /// for short-term credentials.
    public func verifyIntegrity(key: [UInt8]) throws(STUNError) {
        guard let offset = integrityOffset else { throw .missingIntegrity }
        let claimed = Array(raw[(offset + 4)..<(offset + 24)])
        let computed = STUNCodec.integrity(over: raw[..<offset], lengthThroughIntegrity: offset + 24 - STUNMessage.headerLength, key: key)
        guard constantTimeEquals(claimed, computed) else { throw .badIntegrity }
    }

    public var hasIntegrity: Bool { integrityOffset != nil }
}

public enum STUNCodec {
    /// The first byte of STUN is 0-3 (RFC 7983 §7): the cheap test to demultiplex with.
    public static func looksLikeSTUN(_ bytes: some Collection<UInt8>) -> Bool {
        guard bytes.count >= STUNMessage.headerLength, let first = bytes.first else { return false }
        return first < 4
    }

    /// Parses and validates structure and FINGERPRINT (RFC 8489 §6.3). Attributes after
    /// MESSAGE-INTEGRITY other than FINGERPRINT are ignored, as the RFC requires.
    public static func parse(_ input: some Collection<UInt8>) throws(STUNError) -> ReceivedSTUNMessage {
        let bytes = Array(input)
        guard bytes.count >= STUNMessage.headerLength else { throw .tooShort(bytes.count) }
        guard bytes[0] & 0xC0 == 0, UInt32(bigEndianBytes: bytes[4..<8]) == STUNMessage.magicCookie else { throw .notSTUN }
        let declared = Int(UInt16(bigEndianBytes: bytes[2..<4]))
        let actual = bytes.count - STUNMessage.headerLength
        guard declared == actual else { throw .lengthMismatch(declared: declared, actual: actual) }
        guard declared % 4 == 0 else { throw .unalignedLength(declared) }

        let type = STUNMessageType(wire: UInt16(bigEndianBytes: bytes[0..<2]))
        let transactionID = STUNTransactionID(bytes: Array(bytes[8..<20]))
        var attributes: [STUNAttribute] = []
        var integrityOffset: Int?
        var hasFingerprint = false
        var offset = STUNMessage.headerLength
        while offset < bytes.count {
            guard !hasFingerprint else { throw .attributeAfterFingerprint }
            guard offset + 4 <= bytes.count else { throw .truncatedAttribute(STUNAttributeType(rawValue: 0)) }
            let attributeType = STUNAttributeType(rawValue: UInt16(bigEndianBytes: bytes[offset..<(offset + 2)]))
            let length = Int(UInt16(bigEndianBytes: bytes[(offset + 2)..<(offset + 4)]))
            let valueEnd = offset + 4 + length
            guard valueEnd <= bytes.count else { throw .truncatedAttribute(attributeType) }
            let value = Array(bytes[(offset + 4)..<valueEnd])
            switch attributeType {
            case .fingerprint:
                guard length == 4 else { throw .truncatedAttribute(attributeType) }
                let expected = CRC32.checksum(bytes[..<offset].withLength(offset + 8 - STUNMessage.headerLength)) ^ 0x5354_554E
                guard UInt32(bigEndianBytes: value) == expected else { throw .badFingerprint }
                hasFingerprint = true
            case .messageIntegrity where integrityOffset == nil:
                guard length == 20 else { throw .truncatedAttribute(attributeType) }
                integrityOffset = offset
            default:
                if integrityOffset == nil { attributes.append(STUNAttribute(type: attributeType, value: value)) }
            }
            offset = valueEnd + (4 - length % 4) % 4
        }
        return ReceivedSTUNMessage(
            message: STUNMessage(type: type, transactionID: transactionID, attributes: attributes),
            raw: bytes, integrityOffset: integrityOffset, hasFingerprint: hasFingerprint)
    }

    /// The message on the wire, with MESSAGE-INTEGRITY when given a key and FINGERPRINT when asked.
    public static func encode(_ message: STUNMessage, integrityKey: [UInt8]? = nil, fingerprint: Bool = true) -> [UInt8] {
        var bytes = message.type.wireValue.bigEndianBytes + [0, 0] + STUNMessage.magicCookie.bigEndianBytes + message.transactionID.bytes
        for attribute in message.attributes {
            bytes += attribute.type.rawValue.bigEndianBytes + UInt16(attribute.value.count).bigEndianBytes + attribute.value
            bytes += [UInt8](repeating: 0, count: (4 - attribute.value.count % 4) % 4)
        }
        if let integrityKey {
            let mac = integrity(over: bytes[...], lengthThroughIntegrity: bytes.count + 24 - STUNMessage.headerLength, key: integrityKey)
            bytes += STUNAttributeType.messageIntegrity.rawValue.bigEndianBytes + [0, 20] + mac
        }
        if fingerprint {
            let crc = CRC32.checksum(bytes.withLength(bytes.count + 8 - STUNMessage.headerLength)) ^ 0x5354_554E
            bytes += STUNAttributeType.fingerprint.rawValue.bigEndianBytes + [0, 4] + crc.bigEndianBytes
        }
        bytes.replaceSubrange(2..<4, with: UInt16(bytes.count - STUNMessage.headerLength).bigEndianBytes)
        return bytes
    }

    /// HMAC-SHA1 over the message up to MESSAGE-INTEGRITY, with the header's length set as if
    /// MESSAGE-INTEGRITY were the last attribute (RFC 8489 §14.5).
    static func integrity(over prefix: ArraySlice<UInt8>, lengthThroughIntegrity: Int, key: [UInt8]) -> [UInt8] {
        Array(HMAC<Insecure.SHA1>.authenticationCode(for: prefix.withLength(lengthThroughIntegrity), using: SymmetricKey(data: key)))
    }

    /// The long-term credential key (RFC 8489 §9.2.2): MD5 of "username:realm:password".
    public static func longTermKey(username: String, realm: String, password: String) -> [UInt8] {
        Array(Insecure.MD5.hash(data: Array("\(username):\(realm):\(password)".utf8)))
    }
}

extension Collection where Element == UInt8 {
    /// A copy of a message prefix whose header length field says `length`.
    func withLength(_ length: Int) -> [UInt8] {
        var copy = Array(self)
        copy.replaceSubrange(2..<4, with: UInt16(length).bigEndianBytes)
        return copy
    }
}

/// Compares secrets without leaking where they differ through timing.
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    return zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
}
