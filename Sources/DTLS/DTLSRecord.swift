import MediaCore

/// A DTLS record header (RFC 6347 §4.1).
///
///     struct {
///          ContentType type;            // 1 byte: 20 CCS, 21 alert, 22 handshake, 23 data
///          ProtocolVersion version;     // 0xFEFD for DTLS 1.2, 0xFEFF for 1.0
///          uint16 epoch;
///          uint48 sequence_number;
///          uint16 length;
///          opaque fragment[length];
///     } DTLSPlaintext;
public struct DTLSRecord: Sendable, Equatable {
    public static let headerLength = 13

    public var contentType: UInt8
    public var version: UInt16
    public var epoch: UInt16
    public var sequenceNumber: UInt64
    /// Where the whole record (header included) lies in the datagram.
    public var range: Range<Int>

    /// RFC 7983: DTLS datagrams start with a byte in 20...63.
    public static func looksLikeDTLS(_ bytes: some Collection<UInt8>) -> Bool {
        guard let first = bytes.first else { return false }
        return (20...63).contains(first)
    }

    /// Every record of a datagram; a datagram that is not whole records is refused, so
    /// junk never reaches OpenSSL.
    public static func split(_ datagram: [UInt8]) throws(DTLSError) -> [DTLSRecord] {
        var records: [DTLSRecord] = []
        var offset = 0
        while offset < datagram.count {
            guard datagram.count - offset >= headerLength else { throw .malformedRecord("truncated record header") }
            let type = datagram[offset]
            guard (20...63).contains(type) else { throw .malformedRecord("content type \(type)") }
            let version = datagram.readUInt16(at: offset + 1)
            guard version == 0xFEFD || version == 0xFEFF else { throw .malformedRecord("version 0x\(String(version, radix: 16))") }
            let epoch = datagram.readUInt16(at: offset + 3)
            let sequence = UInt64(datagram.readUInt16(at: offset + 5)) << 32 | UInt64(datagram.readUInt32(at: offset + 7))
            let length = Int(datagram.readUInt16(at: offset + 11))
            let end = offset + headerLength + length
            guard end <= datagram.count else { throw .malformedRecord("record length \(length) past the datagram") }
            records.append(DTLSRecord(contentType: type, version: version, epoch: epoch, sequenceNumber: sequence, range: offset..<end))
            offset = end
        }
        return records
    }

    /// Packs consecutive records into datagrams of at most `mtu` bytes, never splitting one.
    public static func packetize(_ stream: [UInt8], mtu: Int) throws(DTLSError) -> [[UInt8]] {
        var datagrams: [[UInt8]] = []
        var current: [UInt8] = []
        for record in try split(stream) {
            if !current.isEmpty, current.count + record.range.count > mtu {
                datagrams.append(current)
                current = []
            }
            current += stream[record.range]
        }
        if !current.isEmpty { datagrams.append(current) }
        return datagrams
    }
}

/// The header of a handshake message inside a record (RFC 6347 §4.2.2), for logs and checks.
public struct DTLSHandshakeHeader: Sendable, Equatable {
    public var messageType: UInt8
    public var length: Int
    public var messageSequence: UInt16
    public var fragmentOffset: Int
    public var fragmentLength: Int

    public static func parse(_ fragment: ArraySlice<UInt8>) throws(DTLSError) -> DTLSHandshakeHeader {
        var reader = ByteReader(fragment)
        guard let type = reader.uint8(), let length = reader.uint24(), let sequence = reader.uint16(),
              let offset = reader.uint24(), let fragmentLength = reader.uint24() else { throw .malformedRecord("truncated handshake header") }
        guard Int(offset) + Int(fragmentLength) <= Int(length), Int(fragmentLength) <= reader.remaining else {
            throw .malformedRecord("handshake fragment outside its message")
        }
        return DTLSHandshakeHeader(messageType: type, length: Int(length), messageSequence: sequence,
                                   fragmentOffset: Int(offset), fragmentLength: Int(fragmentLength))
    }
}

public enum DTLSError: Error, Equatable, CustomStringConvertible {
    case malformedRecord(String)
    case openSSL(String)
    case fingerprintMismatch(expected: String, actual: String)
    case noSRTPProfile

    public var description: String {
        switch self {
        case .malformedRecord(let why): "malformed DTLS: \(why)"
        case .openSSL(let why): "DTLS: \(why)"
        case .fingerprintMismatch(let expected, let actual): "DTLS peer certificate fingerprint \(actual) does not match the SDP's \(expected)"
        case .noSRTPProfile: "DTLS peer negotiated no SRTP protection profile"
        }
    }
}
