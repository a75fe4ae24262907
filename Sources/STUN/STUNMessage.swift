/// A STUN message (RFC 8489 §5).
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |0 0|     STUN Message Type     |         Message Length        |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                         Magic Cookie                          |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                     Transaction ID (96 bits)                  |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
public struct STUNMessage: Sendable, Equatable {
    public static let magicCookie: UInt32 = 0x2112_A442
    public static let headerLength = 20

    public var type: STUNMessageType
    public var transactionID: STUNTransactionID
    /// In wire order. MESSAGE-INTEGRITY and FINGERPRINT are added by `encode`, not kept here.
    public var attributes: [STUNAttribute]

    public init(type: STUNMessageType, transactionID: STUNTransactionID, attributes: [STUNAttribute] = []) {
        self.type = type
        self.transactionID = transactionID
        self.attributes = attributes
    }

    public func attribute(_ type: STUNAttributeType) -> STUNAttribute? {
        attributes.first { $0.type == type }
    }
}

/// Method and class packed into 14 bits (RFC 8489 §5, figure 3).
public struct STUNMessageType: Sendable, Hashable, CustomStringConvertible {
    public enum Class: UInt16, Sendable {
        case request = 0b00
        case indication = 0b01
        case successResponse = 0b10
        case errorResponse = 0b11
    }

    public var method: UInt16
    public var messageClass: Class

    public static let bindingRequest = STUNMessageType(method: 0x001, messageClass: .request)
    public static let bindingSuccess = STUNMessageType(method: 0x001, messageClass: .successResponse)
    public static let bindingError = STUNMessageType(method: 0x001, messageClass: .errorResponse)
    public static let bindingIndication = STUNMessageType(method: 0x001, messageClass: .indication)

    public init(method: UInt16, messageClass: Class) {
        self.method = method & 0x0FFF
        self.messageClass = messageClass
    }

    init(wire value: UInt16) {
        let method = (value & 0x000F) | ((value & 0x00E0) >> 1) | ((value & 0x3E00) >> 2)
        let classBits = ((value & 0x0010) >> 4) | ((value & 0x0100) >> 7)
        self.init(method: method, messageClass: Class(rawValue: classBits)!)
    }

    var wireValue: UInt16 {
        let c = messageClass.rawValue
        return (method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) | ((c & 0b01) << 4) | ((c & 0b10) << 7)
    }

    public var description: String { "method 0x\(String(method, radix: 16)) \(messageClass)" }
}

/// 96 random bits that match a response to its request.
public struct STUNTransactionID: Sendable, Hashable {
    public var bytes: [UInt8]

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 12, "a transaction ID is 12 bytes")
        self.bytes = bytes
    }

    public static func random() -> STUNTransactionID {
        var generator = SystemRandomNumberGenerator()
        return STUNTransactionID(bytes: (0..<12).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}
