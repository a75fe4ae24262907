import CSRTP
import DTLS
import RTP
import SRTP
import Testing

/// libsrtp2 as an independent implementation to check Tally's SRTP against, byte for byte.
final class LibSRTP {
    private var session: srtp_t?
    /// libsrtp2's global setup, once for every test running in parallel.
    private static let initialized = srtp_init() == srtp_err_status_ok

    init(key: [UInt8], salt: [UInt8], profile: SRTPKeyingMaterial.Profile, inbound: Bool) throws {
        try #require(Self.initialized)
        var policy = srtp_policy_t()
        switch profile {
        case .aeadAES128GCM:
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp)
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp)
        case .aes128CMSHA1_80:
            srtp_crypto_policy_set_rtp_default(&policy.rtp)
            srtp_crypto_policy_set_rtcp_default(&policy.rtcp)
        }
        policy.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound
        policy.window_size = 1024
        let material = key + salt
        let status = material.withUnsafeBufferPointer { bytes in
            policy.key = UnsafeMutablePointer(mutating: bytes.baseAddress)
            return srtp_create(&session, &policy)
        }
        try #require(status == srtp_err_status_ok)
    }

    deinit { if let session { srtp_dealloc(session) } }

    func run(_ packet: [UInt8], _ operation: (srtp_t?, UnsafeMutableRawPointer, UnsafeMutablePointer<Int32>) -> srtp_err_status_t) -> [UInt8]? {
        var bytes = packet + [UInt8](repeating: 0, count: Int(SRTP_MAX_TRAILER_LEN))
        var length = Int32(packet.count)
        let status = bytes.withUnsafeMutableBytes { operation(session, $0.baseAddress!, &length) }
        return status == srtp_err_status_ok ? Array(bytes[..<Int(length)]) : nil
    }

    func protect(_ packet: [UInt8]) -> [UInt8]? { run(packet) { srtp_protect($0, $1, $2) } }
    func unprotect(_ packet: [UInt8]) -> [UInt8]? { run(packet) { srtp_unprotect($0, $1, $2) } }
    func protectRTCP(_ packet: [UInt8]) -> [UInt8]? { run(packet) { srtp_protect_rtcp($0, $1, $2) } }
    func unprotectRTCP(_ packet: [UInt8]) -> [UInt8]? { run(packet) { srtp_unprotect_rtcp($0, $1, $2) } }
}

@Suite("SRTP agrees with libsrtp2 byte for byte")
struct LibSRTPOracleTests {
    static let profiles: [SRTPKeyingMaterial.Profile] = [.aeadAES128GCM, .aes128CMSHA1_80]

    static func keys(_ profile: SRTPKeyingMaterial.Profile) -> SRTPKeyingMaterial {
        var generator = SystemRandomNumberGenerator()
        func random(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) } }
        return SRTPKeyingMaterial(profile: profile, localKey: random(16), localSalt: random(profile.saltLength),
                                  remoteKey: random(16), remoteSalt: random(profile.saltLength))
    }

    /// RTP packets across a sequence-number wrap, with CSRCs, a header extension, padding and
    /// an empty payload among them, on six SSRCs: more than a sender keeps inline.
    static let ssrcs: [UInt32] = [0xdead_beef, 0x0102_0304, 0x0a0b_0c0d, 7, 0x7fff_ffff, 0xffff_ffff]

    static func packets() -> [[UInt8]] {
        var packets: [[UInt8]] = []
        for step in 0..<40 {
            let sequence = UInt16(truncatingIfNeeded: 65_520 + step)
            var builder = RTPPacketBuilder(payloadType: 96, sequenceNumber: sequence, timestamp: UInt32(step) * 3000, ssrc: Self.ssrcs[step % Self.ssrcs.count])
            builder.marker = step % 5 == 0
            builder.payload = step == 7 ? [] : (0..<(step * 37 % 1100 + 1)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ step) }
            var bytes = builder.serialize()
            if step % 4 == 1 {
                // Two CSRCs and a one-byte-header extension of two words, spliced in by hand.
                bytes[0] |= 0x12
                bytes.insert(contentsOf: [0, 0, 0, 9, 0, 0, 0, 10, 0xbe, 0xde, 0, 2, 0x10, 0xaa, 0x21, 0xbb, 0xcc, 0, 0, 0], at: 12)
            }
            packets.append(bytes)
        }
        return packets
    }

    static let compounds: [[UInt8]] = [
        [0x81, 0xc9, 0x00, 0x07, 0, 0, 0, 1] + (0..<24).map { UInt8($0) },
        [0x80, 0xc8, 0x00, 0x06, 0x12, 0x34, 0x56, 0x78] + (0..<20).map { UInt8(200 - $0) },
        [0x81, 0xcd, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2],
    ]

    @Test("what Tally protects, libsrtp2 restores", arguments: profiles)
    func tallyToLibSRTP(profile: SRTPKeyingMaterial.Profile) throws {
        let keys = Self.keys(profile)
        let tally = try SRTPSession(keys: keys)
        let oracle = try LibSRTP(key: keys.localKey, salt: keys.localSalt, profile: profile, inbound: true)
        for plain in Self.packets() {
            var packet = plain
            try tally.protectRTP(&packet)
            #expect(oracle.unprotect(packet) == plain)
        }
        for _ in 0..<3 {
            for plain in Self.compounds {
                var packet = plain
                try tally.protectRTCP(&packet)
                #expect(oracle.unprotectRTCP(packet) == plain)
            }
        }
    }

    @Test("what libsrtp2 protects, Tally restores, and the same bytes are protected alike", arguments: profiles)
    func libSRTPToTally(profile: SRTPKeyingMaterial.Profile) throws {
        let keys = Self.keys(profile)
        let tally = try SRTPSession(keys: keys.mirrored)
        let tallySender = try SRTPSession(keys: keys)
        let oracle = try LibSRTP(key: keys.localKey, salt: keys.localSalt, profile: profile, inbound: false)
        for plain in Self.packets() {
            let protected = try #require(oracle.protect(plain))
            var ours = plain
            try tallySender.protectRTP(&ours)
            #expect(ours == protected)
            var packet = protected
            try tally.unprotectRTP(&packet)
            #expect(packet == plain)
        }
        for plain in Self.compounds {
            let protected = try #require(oracle.protectRTCP(plain))
            var ours = plain
            try tallySender.protectRTCP(&ours)
            #expect(ours.count == protected.count)
            var packet = protected
            try tally.unprotectRTCP(&packet)
            #expect(packet == plain)
        }
    }

    @Test("a replayed or altered SRTCP compound is refused", arguments: profiles)
    func rtcpReplayAndTampering(profile: SRTPKeyingMaterial.Profile) throws {
        let keys = Self.keys(profile)
        let sender = try SRTPSession(keys: keys)
        let receiver = try SRTPSession(keys: keys.mirrored)
        var packet = Self.compounds[0]
        try sender.protectRTCP(&packet)
        var tampered = packet
        tampered[9] ^= 0x80
        #expect(throws: SRTPError.authenticationFailed) { try receiver.unprotectRTCP(&tampered) }
        var first = packet
        try receiver.unprotectRTCP(&first)
        var again = packet
        #expect(throws: SRTPError.replayed) { try receiver.unprotectRTCP(&again) }
    }

    @Test("packets arriving out of order inside the window are taken once each; older ones are refused")
    func reordering() throws {
        let keys = Self.keys(.aeadAES128GCM)
        let sender = try SRTPSession(keys: keys)
        let receiver = try SRTPSession(keys: keys.mirrored)
        var protected: [[UInt8]] = []
        for sequence in 0..<1100 {
            var builder = RTPPacketBuilder(payloadType: 96, sequenceNumber: UInt16(truncatingIfNeeded: 65_000 + sequence), timestamp: 0, ssrc: 7)
            builder.payload = [1, 2, 3]
            var packet = builder.serialize()
            try sender.protectRTP(&packet)
            protected.append(packet)
        }
        var first = protected[0]
        try receiver.unprotectRTP(&first)
        // Past the sequence-number wrap: the receiver must guess the next rollover counter.
        var last = protected[1099]
        try receiver.unprotectRTP(&last)
        var late = protected[500]
        try receiver.unprotectRTP(&late)
        var lateAgain = protected[500]
        #expect(throws: SRTPError.replayed) { try receiver.unprotectRTP(&lateAgain) }
        var tooOld = protected[10]
        #expect(throws: SRTPError.replayed) { try receiver.unprotectRTP(&tooOld) }
    }
}
