import CSRTP
import DTLS

/// SRTP and SRTCP (RFC 3711, RFC 7714) for one transport, both directions, with libsrtp2.
///
/// Not thread-safe: owned by the event loop of the transport it protects.
public final class SRTPSession {
    public static let maxOverhead = Int(SRTP_MAX_TRAILER_LEN)

    private var outbound: srtp_t?
    private var inbound: srtp_t?

    public init(keys: SRTPKeyingMaterial) throws(SRTPError) {
        SRTPLibrary.initialize()
        outbound = try Self.create(key: keys.localKey + keys.localSalt, profile: keys.profile, inbound: false)
        do {
            inbound = try Self.create(key: keys.remoteKey + keys.remoteSalt, profile: keys.profile, inbound: true)
        } catch {
            srtp_dealloc(outbound)
            throw error
        }
    }

    deinit {
        srtp_dealloc(outbound)
        srtp_dealloc(inbound)
    }

    /// Encrypts an RTP packet in place, appending the authentication tag.
    public func protectRTP(_ packet: inout [UInt8]) throws(SRTPError) {
        try run(&packet, grow: true) { session, pointer, length in srtp_protect(session, pointer, length) }
    }

    /// Decrypts in place; fails on a bad tag, a replayed packet, or an unknown stream.
    public func unprotectRTP(_ packet: inout [UInt8]) throws(SRTPError) {
        try run(&packet, grow: false, inbound: true) { session, pointer, length in srtp_unprotect(session, pointer, length) }
    }

    /// Encrypts the RTP packet of `length` bytes at `bytes` in place; `capacity` must leave
    /// `maxOverhead` bytes after it for the tag. Returns the protected length. For senders
    /// that build packets straight into their I/O buffers.
    public func protectRTP(_ bytes: UnsafeMutableRawPointer, length: Int, capacity: Int) throws(SRTPError) -> Int {
        guard length >= 12 else { throw .tooShort }
        precondition(capacity >= length + Self.maxOverhead, "no room for the SRTP tag")
        var protectedLength = Int32(length)
        let status = srtp_protect(outbound, bytes, &protectedLength)
        guard status == srtp_err_status_ok else { throw SRTPError(status) }
        return Int(protectedLength)
    }

    public func protectRTCP(_ packet: inout [UInt8]) throws(SRTPError) {
        try run(&packet, grow: true) { session, pointer, length in srtp_protect_rtcp(session, pointer, length) }
    }

    public func unprotectRTCP(_ packet: inout [UInt8]) throws(SRTPError) {
        try run(&packet, grow: false, inbound: true) { session, pointer, length in srtp_unprotect_rtcp(session, pointer, length) }
    }

    private func run(_ packet: inout [UInt8], grow: Bool, inbound useInbound: Bool = false,
                     _ operation: (srtp_t?, UnsafeMutableRawPointer, UnsafeMutablePointer<Int32>) -> srtp_err_status_t) throws(SRTPError) {
        guard packet.count >= 12 else { throw .tooShort }
        var length = Int32(packet.count)
        if grow { packet.append(contentsOf: repeatElement(0, count: Self.maxOverhead)) }
        let session = useInbound ? inbound : outbound
        let status = packet.withUnsafeMutableBytes { operation(session, $0.baseAddress!, &length) }
        guard status == srtp_err_status_ok else {
            if grow { packet.removeLast(Self.maxOverhead) }
            throw SRTPError(status)
        }
        packet.removeLast(packet.count - Int(length))
    }

    private static func create(key: [UInt8], profile: SRTPKeyingMaterial.Profile, inbound: Bool) throws(SRTPError) -> srtp_t? {
        var policy = srtp_policy_t()
        switch profile {
        case .aeadAES128GCM:
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp)
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp)
        case .aes128CMSHA1_80:
            // The defaults are AES_CM_128_HMAC_SHA1_80 (the name itself is a macro).
            srtp_crypto_policy_set_rtp_default(&policy.rtp)
            srtp_crypto_policy_set_rtcp_default(&policy.rtcp)
        }
        policy.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound
        // Replay protection stays on for what we receive; what we send may repeat a
        // sequence number when a NACK is answered by plain retransmission.
        policy.window_size = 1024
        policy.allow_repeat_tx = inbound ? 0 : 1
        var session: srtp_t?
        let status = key.withUnsafeBufferPointer { keyBytes in
            policy.key = UnsafeMutablePointer(mutating: keyBytes.baseAddress)
            return srtp_create(&session, &policy)
        }
        guard status == srtp_err_status_ok else { throw SRTPError(status) }
        return session
    }
}

/// libsrtp2's one-time global setup.
enum SRTPLibrary {
    private static let initialized: Bool = srtp_init() == srtp_err_status_ok

    static func initialize() {
        precondition(initialized, "libsrtp2 failed to initialize")
    }
}

public enum SRTPError: Error, Equatable, CustomStringConvertible {
    case tooShort
    case authenticationFailed
    case replayed
    case other(Int32)

    init(_ status: srtp_err_status_t) {
        switch status {
        case srtp_err_status_auth_fail: self = .authenticationFailed
        case srtp_err_status_replay_fail, srtp_err_status_replay_old: self = .replayed
        default: self = .other(Int32(bitPattern: status.rawValue))
        }
    }

    public var description: String {
        switch self {
        case .tooShort: "SRTP packet too short"
        case .authenticationFailed: "SRTP authentication failed"
        case .replayed: "SRTP replay"
        case .other(let code): "libsrtp2 error \(code)"
        }
    }
}
