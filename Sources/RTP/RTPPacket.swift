import MediaCore

/// An RTP packet (RFC 3550 §5.1) read in place: the received bytes are kept, fields are
/// decoded once, and header extensions are found by scanning, so parsing allocates nothing.
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |V=2|P|X|  CC   |M|     PT      |       sequence number         |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                           timestamp                           |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |           synchronization source (SSRC) identifier            |
///     +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
///     |            contributing source (CSRC) identifiers             |
///     |                             ....                              |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
public struct RTPPacket: Sendable {
    public let bytes: [UInt8]
    public let marker: Bool
    public let payloadType: UInt8
    public let sequenceNumber: UInt16
    public let timestamp: UInt32
    public let ssrc: UInt32
    public let csrcCount: Int
    /// 0xBEDE (one-byte form), 0x100x (two-byte form), another profile, or nil without X.
    public let extensionProfile: UInt16?
    let extensionRange: Range<Int>
    public let payloadRange: Range<Int>
    public let paddingLength: Int

    public init(_ bytes: [UInt8]) throws(RTPError) {
        guard bytes.count >= 12 else { throw .tooShort(bytes.count) }
        guard bytes[0] >> 6 == 2 else { throw .badVersion(bytes[0] >> 6) }
        let hasPadding = bytes[0] & 0x20 != 0
        let hasExtension = bytes[0] & 0x10 != 0
        csrcCount = Int(bytes[0] & 0x0F)
        marker = bytes[1] & 0x80 != 0
        payloadType = bytes[1] & 0x7F
        sequenceNumber = bytes.readUInt16(at: 2)
        timestamp = bytes.readUInt32(at: 4)
        ssrc = bytes.readUInt32(at: 8)
        var offset = 12 + 4 * csrcCount
        guard offset <= bytes.count else { throw .truncated("CSRC list") }
        if hasExtension {
            guard offset + 4 <= bytes.count else { throw .truncated("header extension") }
            extensionProfile = UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
            let words = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            let end = offset + 4 + 4 * words
            guard end <= bytes.count else { throw .truncated("header extension") }
            extensionRange = (offset + 4)..<end
            offset = end
        } else {
            extensionProfile = nil
            extensionRange = offset..<offset
        }
        var end = bytes.count
        if hasPadding {
            let padding = Int(bytes[bytes.count - 1])
            guard padding > 0, offset + padding <= bytes.count else { throw .badPadding(padding) }
            end -= padding
        }
        paddingLength = bytes.count - end
        payloadRange = offset..<end
        self.bytes = bytes
    }

    // Inlinable so a caller reading the payload of a packet it holds does not copy the whole
    // packet first: the SFU reads it once for every subscriber it forwards to.
    @inlinable public var payload: ArraySlice<UInt8> { bytes[payloadRange] }
    @inlinable public var headerLength: Int { payloadRange.lowerBound }

    public func csrc(_ index: Int) -> UInt32 {
        precondition(index < csrcCount)
        return bytes.readUInt32(at: 12 + 4 * index)
    }

    /// The value of header extension `id` (RFC 8285), or nil when absent or malformed.
    public func extensionValue(id: UInt8) -> ArraySlice<UInt8>? {
        guard let profile = extensionProfile, id > 0 else { return nil }
        var cursor = extensionRange.lowerBound
        let end = extensionRange.upperBound
        if profile == 0xBEDE {
            // One-byte form (§4.2): 4-bit id, 4-bit length-1; id 15 stops the scan.
            while cursor < end {
                let head = bytes[cursor]
                if head == 0 { cursor += 1; continue }
                let elementID = head >> 4
                if elementID == 15 { return nil }
                let length = Int(head & 0x0F) + 1
                guard cursor + 1 + length <= end else { return nil }
                if elementID == id { return bytes[(cursor + 1)..<(cursor + 1 + length)] }
                cursor += 1 + length
            }
        } else if profile & 0xFFF0 == 0x1000 {
            // Two-byte form (§4.3): 8-bit id, 8-bit length.
            while cursor < end {
                let elementID = bytes[cursor]
                if elementID == 0 { cursor += 1; continue }
                guard cursor + 2 <= end else { return nil }
                let length = Int(bytes[cursor + 1])
                guard cursor + 2 + length <= end else { return nil }
                if elementID == id { return bytes[(cursor + 2)..<(cursor + 2 + length)] }
                cursor += 2 + length
            }
        }
        return nil
    }
}

public enum RTPError: Error, Equatable, CustomStringConvertible {
    case tooShort(Int)
    case badVersion(UInt8)
    case truncated(String)
    case badPadding(Int)

    public var description: String {
        switch self {
        case .tooShort(let count): "\(count) bytes is too short for RTP"
        case .badVersion(let version): "RTP version \(version), expected 2"
        case .truncated(let part): "RTP \(part) runs past the end of the packet"
        case .badPadding(let count): "RTP padding of \(count) bytes does not fit the packet"
        }
    }
}

/// What a new packet carries; `serialize` writes it.
public struct RTPPacketBuilder: Sendable {
    public var marker = false
    public var payloadType: UInt8
    public var sequenceNumber: UInt16
    public var timestamp: UInt32
    public var ssrc: UInt32
    public var csrcs: [UInt32] = []
    /// (id, value) pairs; the one-byte form is used when every pair fits it.
    public var extensions: [(id: UInt8, value: [UInt8])] = []
    public var payload: [UInt8] = []
    public var paddingLength = 0

    public init(payloadType: UInt8, sequenceNumber: UInt16, timestamp: UInt32, ssrc: UInt32) {
        self.payloadType = payloadType
        self.sequenceNumber = sequenceNumber
        self.timestamp = timestamp
        self.ssrc = ssrc
    }

    public func serialize() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(12 + 4 * csrcs.count + 4 + extensions.reduce(0) { $0 + 2 + $1.value.count } + payload.count + paddingLength + 3)
        let flags: UInt8 = 0x80 | (paddingLength > 0 ? 0x20 : 0) | (extensions.isEmpty ? 0 : 0x10) | UInt8(csrcs.count & 0x0F)
        out.append(flags)
        out.append((marker ? 0x80 : 0) | (payloadType & 0x7F))
        out.appendUInt16(sequenceNumber)
        out.appendUInt32(timestamp)
        out.appendUInt32(ssrc)
        for csrc in csrcs.prefix(15) { out.appendUInt32(csrc) }
        if !extensions.isEmpty {
            let oneByte = extensions.allSatisfy { (1...14).contains($0.id) && (1...16).contains($0.value.count) }
            let start = out.count
            out.appendUInt16(oneByte ? 0xBEDE : 0x1000)
            out.appendUInt16(0)
            for element in extensions {
                if oneByte {
                    out.append(element.id << 4 | UInt8(element.value.count - 1))
                } else {
                    out.append(element.id)
                    out.append(UInt8(min(element.value.count, 255)))
                }
                out.append(contentsOf: element.value.prefix(oneByte ? 16 : 255))
            }
            while (out.count - start) % 4 != 0 { out.append(0) }
            let words = (out.count - start - 4) / 4
            out[start + 2] = UInt8(words >> 8)
            out[start + 3] = UInt8(words & 0xFF)
        }
        out.append(contentsOf: payload)
        if paddingLength > 0 {
            out.append(contentsOf: [UInt8](repeating: 0, count: paddingLength - 1))
            out.append(UInt8(paddingLength))
        }
        return out
    }
}
