/// One attribute as it travels: a type and its value, unpadded (RFC 8489 §14).
///
///      0                   1                   2                   3
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |         Type                  |            Length             |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                         Value (variable)                ....
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
public struct STUNAttribute: Sendable, Equatable {
    public var type: STUNAttributeType
    public var value: [UInt8]

    public init(type: STUNAttributeType, value: [UInt8]) {
        self.type = type
        self.value = value
    }
}

public struct STUNAttributeType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let mappedAddress = Self(rawValue: 0x0001)
    public static let username = Self(rawValue: 0x0006)
    public static let messageIntegrity = Self(rawValue: 0x0008)
    public static let errorCode = Self(rawValue: 0x0009)
    public static let unknownAttributes = Self(rawValue: 0x000A)
    public static let realm = Self(rawValue: 0x0014)
    public static let nonce = Self(rawValue: 0x0015)
    public static let messageIntegritySHA256 = Self(rawValue: 0x001C)
    public static let userhash = Self(rawValue: 0x001E)
    public static let xorMappedAddress = Self(rawValue: 0x0020)
    /// RFC 8445 §16.1
    public static let priority = Self(rawValue: 0x0024)
    public static let useCandidate = Self(rawValue: 0x0025)
    // TURN (RFC 8656 §18).
    public static let channelNumber = Self(rawValue: 0x000C)
    public static let lifetime = Self(rawValue: 0x000D)
    public static let xorPeerAddress = Self(rawValue: 0x0012)
    public static let data = Self(rawValue: 0x0013)
    public static let xorRelayedAddress = Self(rawValue: 0x0016)
    public static let requestedAddressFamily = Self(rawValue: 0x0017)
    public static let evenPort = Self(rawValue: 0x0018)
    public static let requestedTransport = Self(rawValue: 0x0019)
    public static let dontFragment = Self(rawValue: 0x001A)
    public static let reservationToken = Self(rawValue: 0x0022)
    public static let additionalAddressFamily = Self(rawValue: 0x8000)
    public static let software = Self(rawValue: 0x8022)
    public static let fingerprint = Self(rawValue: 0x8028)
    public static let iceControlled = Self(rawValue: 0x8029)
    public static let iceControlling = Self(rawValue: 0x802A)

    /// Types below 0x8000 must be understood; a request carrying an unknown one is refused
    /// with 420 (RFC 8489 §14).
    public var isComprehensionRequired: Bool { rawValue < 0x8000 }

    public var description: String { "0x" + String(rawValue, radix: 16) }
}

// MARK: Typed attributes

extension STUNAttribute {
    public static func username(_ name: String) -> STUNAttribute {
        STUNAttribute(type: .username, value: Array(name.utf8))
    }

    public static func software(_ name: String) -> STUNAttribute {
        STUNAttribute(type: .software, value: Array(name.utf8))
    }

    /// RFC 8445 §7.1.1
    public static func priority(_ value: UInt32) -> STUNAttribute {
        STUNAttribute(type: .priority, value: value.bigEndianBytes)
    }

    public static let useCandidate = STUNAttribute(type: .useCandidate, value: [])

    public static func iceControlling(_ tieBreaker: UInt64) -> STUNAttribute {
        STUNAttribute(type: .iceControlling, value: tieBreaker.bigEndianBytes)
    }

    public static func iceControlled(_ tieBreaker: UInt64) -> STUNAttribute {
        STUNAttribute(type: .iceControlled, value: tieBreaker.bigEndianBytes)
    }

    /// RFC 8489 §14.8: class in the hundreds digit, number below it, then a reason phrase.
    public static func errorCode(_ code: Int, reason: String) -> STUNAttribute {
        let clamped = min(max(code, 300), 699)
        return STUNAttribute(type: .errorCode, value: [0, 0, UInt8(clamped / 100), UInt8(clamped % 100)] + Array(reason.utf8.prefix(763)))
    }

    public static func unknownAttributes(_ types: [STUNAttributeType]) -> STUNAttribute {
        STUNAttribute(type: .unknownAttributes, value: types.flatMap { $0.rawValue.bigEndianBytes })
    }
}

extension STUNMessage {
    public var username: String? {
        attribute(.username).map { String(decoding: $0.value, as: UTF8.self) }
    }

    public var priority: UInt32? {
        attribute(.priority).flatMap { $0.value.count == 4 ? UInt32(bigEndianBytes: $0.value) : nil }
    }

    public var useCandidate: Bool { attribute(.useCandidate) != nil }

    public var iceControlling: UInt64? {
        attribute(.iceControlling).flatMap { $0.value.count == 8 ? UInt64(bigEndianBytes: $0.value) : nil }
    }

    public var iceControlled: UInt64? {
        attribute(.iceControlled).flatMap { $0.value.count == 8 ? UInt64(bigEndianBytes: $0.value) : nil }
    }

    public var software: String? {
        attribute(.software).map { String(decoding: $0.value, as: UTF8.self) }
    }

    /// The error code and reason of an error response, when well formed.
    public var errorCode: (code: Int, reason: String)? {
        guard let value = attribute(.errorCode)?.value, value.count >= 4 else { return nil }
        let code = Int(value[2] & 0x07) * 100 + Int(value[3])
        return (code, String(decoding: value[4...], as: UTF8.self))
    }

    /// Comprehension-required attributes this codec does not know (RFC 8489 §7.3.1).
    public var unknownComprehensionRequired: [STUNAttributeType] {
        unknownComprehensionRequired(alsoKnown: [])
    }

    /// The same, for a user of STUN that knows more attributes (TURN).
    public func unknownComprehensionRequired(alsoKnown: Set<STUNAttributeType>) -> [STUNAttributeType] {
        let known: Set<STUNAttributeType> = [
            .mappedAddress, .username, .messageIntegrity, .errorCode, .unknownAttributes, .realm, .nonce,
            .messageIntegritySHA256, .userhash, .xorMappedAddress, .priority, .useCandidate,
        ]
        return attributes.map(\.type).filter { $0.isComprehensionRequired && !known.contains($0) && !alsoKnown.contains($0) }
    }
}

extension FixedWidthInteger {
    public var bigEndianBytes: [UInt8] {
        withUnsafeBytes(of: bigEndian) { Array($0) }
    }

    public init(bigEndianBytes bytes: some Collection<UInt8>) {
        self = bytes.reduce(0) { $0 << 8 | Self($1) }
    }
}
