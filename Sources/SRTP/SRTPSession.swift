import DTLS

/// SRTP and SRTCP (RFC 3711, RFC 7714) for one transport, both directions:
/// AEAD_AES_128_GCM and AES_CM_128_HMAC_SHA1_80 on OpenSSL's ciphers.
///
/// Replay protection is on for what we receive, over the last 1024 packets of each SSRC.
/// What we send may repeat a sequence number, as when a NACK is answered by plain
/// retransmission.
///
/// Not thread-safe: owned by the event loop of the transport it protects. A struct over the
/// two directions' contexts, so its owner reaches the outbound context without an object
/// between; copies share the contexts.
public struct SRTPSession {
    /// The most a packet grows when protected: a GCM tag plus the SRTCP index.
    public static let maxOverhead = AESGCM.tagLength + 4

    private let outbound: SRTPContext
    private let inbound: SRTPContext

    public init(keys: SRTPKeyingMaterial) throws(SRTPError) {
        outbound = try SRTPContext(profile: keys.profile, masterKey: keys.localKey, masterSalt: keys.localSalt)
        inbound = try SRTPContext(profile: keys.profile, masterKey: keys.remoteKey, masterSalt: keys.remoteSalt)
    }

    /// Encrypts an RTP packet in place, appending the authentication tag.
    public func protectRTP(_ packet: inout [UInt8]) throws(SRTPError) {
        try Self.transform(&packet, growing: true) { bytes, length, _ throws(SRTPError) in try outbound.protectRTP(bytes, length: length) }
    }

    /// Decrypts in place; fails on a bad tag or a replayed packet. On failure the packet's
    /// bytes are not to be used.
    public func unprotectRTP(_ packet: inout [UInt8]) throws(SRTPError) {
        try Self.transform(&packet, growing: false) { bytes, length, _ throws(SRTPError) in try inbound.unprotectRTP(bytes, length: length) }
    }

    /// Encrypts the RTP packet of `length` bytes at `bytes` in place; `capacity` must leave
    /// `maxOverhead` bytes after it for the tag. Returns the protected length. For senders
    /// that build packets straight into their I/O buffers.
    public func protectRTP(_ bytes: UnsafeMutableRawPointer, length: Int, capacity: Int) throws(SRTPError) -> Int {
        precondition(capacity >= length + Self.maxOverhead, "no room for the SRTP tag")
        return try outbound.protectRTP(bytes.assumingMemoryBound(to: UInt8.self), length: length)
    }

    public func protectRTCP(_ packet: inout [UInt8]) throws(SRTPError) {
        try Self.transform(&packet, growing: true) { bytes, length, _ throws(SRTPError) in try outbound.protectRTCP(bytes, length: length) }
    }

    public func unprotectRTCP(_ packet: inout [UInt8]) throws(SRTPError) {
        try Self.transform(&packet, growing: false) { bytes, length, _ throws(SRTPError) in try inbound.unprotectRTCP(bytes, length: length) }
    }

    private static func transform(_ packet: inout [UInt8], growing: Bool,
                                  _ body: (UnsafeMutablePointer<UInt8>, Int, Int) throws(SRTPError) -> Int) throws(SRTPError) {
        let original = packet.count
        guard original >= 8 else { throw .tooShort }
        if growing { packet.append(contentsOf: repeatElement(0, count: maxOverhead)) }
        let result = packet.withUnsafeMutableBufferPointer { buffer in
            Result { () throws(SRTPError) -> Int in try body(buffer.baseAddress!, original, buffer.count) }
        }
        switch result {
        case .success(let length):
            packet.removeLast(packet.count - length)
        case .failure(let error):
            packet.removeLast(packet.count - original)
            throw error
        }
    }
}

public enum SRTPError: Error, Equatable, CustomStringConvertible {
    case tooShort
    case authenticationFailed
    case replayed
    /// OpenSSL refused a key or an operation.
    case cipher(String)

    public var description: String {
        switch self {
        case .tooShort: "SRTP packet too short or its RTP header overruns it"
        case .authenticationFailed: "SRTP authentication failed"
        case .replayed: "SRTP replay"
        case .cipher(let why): "SRTP cipher: \(why)"
        }
    }
}
