/// An IP address and port as STUN carries them.
public struct TransportAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6, network order.
    public var ip: [UInt8]
    public var port: UInt16

    public init(ip: [UInt8], port: UInt16) {
        precondition(ip.count == 4 || ip.count == 16, "an IP address is 4 or 16 bytes")
        self.ip = ip
        self.port = port
    }

    public var isIPv4: Bool { ip.count == 4 }

    public var description: String {
        if isIPv4 { return ip.map(String.init).joined(separator: ".") + ":\(port)" }
        let groups = stride(from: 0, to: 16, by: 2).map { String(UInt16(ip[$0]) << 8 | UInt16(ip[$0 + 1]), radix: 16) }
        return "[\(groups.joined(separator: ":"))]:\(port)"
    }
}

extension STUNAttribute {
    /// XOR-MAPPED-ADDRESS (RFC 8489 §14.2): the port XORed with the cookie's top half, the
    /// address with the cookie (and, for IPv6, the transaction ID), so NATs that rewrite
    /// addresses inside payloads leave it alone.
    ///
    ///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    ///     |0 0 0 0 0 0 0 0|    Family     |         X-Port                |
    ///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    ///     |                X-Address (Variable)
    ///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    public static func xorMappedAddress(_ address: TransportAddress, transactionID: STUNTransactionID) -> STUNAttribute {
        xorAddress(.xorMappedAddress, address, transactionID: transactionID)
    }

    /// Any attribute in XOR-MAPPED-ADDRESS's form (TURN's XOR-PEER-ADDRESS and XOR-RELAYED-ADDRESS too).
    public static func xorAddress(_ type: STUNAttributeType, _ address: TransportAddress, transactionID: STUNTransactionID) -> STUNAttribute {
        let mask = STUNMessage.magicCookie.bigEndianBytes + transactionID.bytes
        let port = address.port ^ UInt16(STUNMessage.magicCookie >> 16)
        let family: UInt8 = address.isIPv4 ? 0x01 : 0x02
        let ip = zip(address.ip, mask).map { $0 ^ $1 }
        return STUNAttribute(type: type, value: [0, family] + port.bigEndianBytes + ip)
    }
}

extension STUNMessage {
    public var xorMappedAddress: TransportAddress? { xorAddress(.xorMappedAddress) }

    /// The first attribute of `type` read as an XOR address; nil when absent or malformed.
    public func xorAddress(_ type: STUNAttributeType) -> TransportAddress? {
        xorAddresses(type).first ?? nil
    }

    /// Every attribute of `type` read as an XOR address (a request may carry several), nil
    /// for each malformed one.
    public func xorAddresses(_ type: STUNAttributeType) -> [TransportAddress?] {
        attributes.filter { $0.type == type }.map { attribute in
            let value = attribute.value
            guard value.count >= 8 else { return nil }
            let length: Int
            switch value[1] {
            case 0x01: length = 4
            case 0x02: length = 16
            default: return nil
            }
            guard value.count == 4 + length else { return nil }
            let mask = Self.magicCookie.bigEndianBytes + transactionID.bytes
            let port = UInt16(bigEndianBytes: value[2..<4]) ^ UInt16(Self.magicCookie >> 16)
            let ip = zip(value[4...], mask).map { $0 ^ $1 }
            return TransportAddress(ip: ip, port: port)
        }
    }
}
