import DTLS

/// One direction of an SRTP session: the session keys derived from a master key and salt
/// (RFC 3711 §4.3), and what each SSRC has sent: its rollover counter, replay window and, for
/// SRTCP, its index.
///
/// Packets are transformed in place through raw pointers, as they sit in I/O buffers; every
/// length is checked before a byte is touched.
final class SRTPContext {
    /// The session keys of SRTP or of SRTCP: AES-GCM (RFC 7714) or AES-CM with
    /// HMAC-SHA1-80 (RFC 3711). Its ciphers are held inline, so protecting a packet touches
    /// this context and OpenSSL's, nothing between.
    private struct Keys: ~Copyable {
        let gcm: AESGCM?
        let counter: AESCounterMode?
        let mac: HMACSHA1?
        /// 14 bytes for AES-CM; GCM's 12 and two zero bytes.
        let salt: Salt

        var tagLength: Int { gcm == nil ? 10 : AESGCM.tagLength }
    }

    typealias Salt = InlineArray<14, UInt8>

    private final class Stream {
        var window = ReplayWindow()
        /// The SRTCP index the next protected compound gets.
        var nextRTCPIndex: UInt32 = 0
    }

    private let rtp: Keys
    private let rtcp: Keys
    private var sent = SentIndices()
    private var rtpStreams: [UInt32: Stream] = [:]
    private var rtcpStreams: [UInt32: Stream] = [:]

    init(profile: SRTPKeyingMaterial.Profile, masterKey: [UInt8], masterSalt: [UInt8]) throws(SRTPError) {
        guard masterKey.count == profile.keyLength, masterSalt.count == profile.saltLength else {
            throw .cipher("a \(profile) master key is \(profile.keyLength) bytes and its salt \(profile.saltLength)")
        }
        do {
            let prf = try AESCounterMode(key: masterKey)
            func derive(_ label: UInt8, _ length: Int) throws(SRTPError) -> [UInt8] {
                try Self.derive(prf, masterSalt: masterSalt, label: label, length: length)
            }
            func salt(_ label: UInt8, _ length: Int) throws(SRTPError) -> Salt {
                let bytes = try derive(label, length)
                return Salt { $0 < bytes.count ? bytes[$0] : 0 }
            }
            switch profile {
            case .aes128CMSHA1_80:
                rtp = Keys(gcm: nil, counter: try AESCounterMode(key: derive(0, 16)), mac: try HMACSHA1(key: derive(1, 20)), salt: try salt(2, 14))
                rtcp = Keys(gcm: nil, counter: try AESCounterMode(key: derive(3, 16)), mac: try HMACSHA1(key: derive(4, 20)), salt: try salt(5, 14))
            case .aeadAES128GCM:
                rtp = Keys(gcm: try AESGCM(key: derive(0, 16)), counter: nil, mac: nil, salt: try salt(2, 12))
                rtcp = Keys(gcm: try AESGCM(key: derive(3, 16)), counter: nil, mac: nil, salt: try salt(5, 12))
            }
        } catch let error as DTLSError {
            throw .cipher(error.description)
        } catch let error as SRTPError {
            throw error
        } catch {
            throw .cipher("\(error)")
        }
    }

    /// The AES-CM key derivation function with a key derivation rate of 0 (RFC 3711 §4.3.1,
    /// §4.3.3): the keystream under the master key, from the master salt with the label at
    /// byte 7. GCM's 12-byte master salt is used as if padded with two zero bytes (RFC 7714 §11).
    private static func derive(_ prf: borrowing AESCounterMode, masterSalt: [UInt8], label: UInt8, length: Int) throws(SRTPError) -> [UInt8] {
        var iv = [UInt8](repeating: 0, count: 16)
        iv.replaceSubrange(0..<masterSalt.count, with: masterSalt)
        iv[7] ^= label
        var output = [UInt8](repeating: 0, count: length)
        let ok = output.withUnsafeMutableBufferPointer { out in prf.apply(iv: iv, to: out.baseAddress!, length: length) }
        guard ok else { throw .cipher("key derivation failed") }
        return output
    }

    // MARK: RTP

    func protectRTP(_ packet: UnsafeMutablePointer<UInt8>, length: Int) throws(SRTPError) -> Int {
        guard let header = Self.rtpHeaderLength(packet, length: length) else { throw .tooShort }
        let ssrc = Self.readUInt32(packet + 8)
        let sequence = UInt16(packet[2]) << 8 | UInt16(packet[3])
        let index = sent.send(sequence, ssrc: ssrc)
        let tag = packet + length
        if rtp.gcm != nil {
            let sealed = Self.gcmIV(salt: rtp.salt, ssrc: ssrc, index: index) { iv in
                rtp.gcm?.seal(iv: iv, additional: UnsafeRawBufferPointer(start: packet, count: header), bytes: packet + header, length: length - header, tag: tag)
            }
            guard sealed else { throw .cipher("AES-GCM protect failed") }
            return length + AESGCM.tagLength
        }
        guard Self.counterIV(salt: rtp.salt, ssrc: ssrc, index: index, { iv in rtp.counter?.apply(iv: iv, to: packet + header, length: length - header) }),
              appendTag(rtp, UnsafeRawBufferPointer(start: packet, count: length), rolloverCounter: UInt32(truncatingIfNeeded: index >> 16), at: tag)
        else { throw .cipher("AES-CM protect failed") }
        return length + 10
    }

    func unprotectRTP(_ packet: UnsafeMutablePointer<UInt8>, length: Int) throws(SRTPError) -> Int {
        let tagLength = rtp.tagLength
        guard length >= 12 + tagLength, let header = Self.rtpHeaderLength(packet, length: length - tagLength) else { throw .tooShort }
        let ssrc = Self.readUInt32(packet + 8)
        let sequence = UInt16(packet[2]) << 8 | UInt16(packet[3])
        let known = rtpStreams[ssrc]
        let index = known?.window.estimate(sequence) ?? UInt64(sequence)
        if let known, !known.window.isFresh(index) { throw .replayed }
        let body = length - tagLength
        if rtp.gcm != nil {
            let opened = Self.gcmIV(salt: rtp.salt, ssrc: ssrc, index: index) { iv in
                rtp.gcm?.open(iv: iv, additional: UnsafeRawBufferPointer(start: packet, count: header), bytes: packet + header, length: body - header, tag: packet + body)
            }
            guard opened else { throw .authenticationFailed }
        } else {
            let authentic = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: HMACSHA1.length) { expected in
                authenticate(rtp, UnsafeRawBufferPointer(start: packet, count: body), rolloverCounter: UInt32(truncatingIfNeeded: index >> 16), into: expected.baseAddress!)
                    && Self.constantTimeEqual(expected.baseAddress!, packet + body, count: tagLength)
            }
            guard authentic else { throw .authenticationFailed }
            guard Self.counterIV(salt: rtp.salt, ssrc: ssrc, index: index, { iv in rtp.counter?.apply(iv: iv, to: packet + header, length: body - header) }) else {
                throw .cipher("AES-CM unprotect failed")
            }
        }
        let stream = known ?? Self.stream(ssrc, in: &rtpStreams)
        stream.window.accept(index)
        return body
    }

    private static func stream(_ ssrc: UInt32, in streams: inout [UInt32: Stream]) -> Stream {
        if let existing = streams[ssrc] { return existing }
        let created = Stream()
        streams[ssrc] = created
        return created
    }

    // MARK: RTCP

    /// Layout after protecting (RFC 3711 §3.4, RFC 7714 §9): the first 8 bytes stay clear;
    /// AES-CM appends E‖index then the tag, GCM the tag then E‖index.
    func protectRTCP(_ packet: UnsafeMutablePointer<UInt8>, length: Int) throws(SRTPError) -> Int {
        guard length >= 8 else { throw .tooShort }
        let ssrc = Self.readUInt32(packet + 4)
        let stream = Self.stream(ssrc, in: &rtcpStreams)
        let index = stream.nextRTCPIndex
        stream.nextRTCPIndex = (index + 1) & 0x7fff_ffff
        let flagged = 0x8000_0000 | index
        if rtcp.gcm != nil {
            let sealed = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 12) { additional in
                let additional = additional.baseAddress!
                additional.update(from: packet, count: 8)
                Self.writeUInt32(flagged, to: additional + 8)
                return Self.gcmIV(salt: rtcp.salt, ssrc: ssrc, index: UInt64(index)) { iv in
                    rtcp.gcm?.seal(iv: iv, additional: UnsafeRawBufferPointer(start: additional, count: 12), bytes: packet + 8, length: length - 8, tag: packet + length)
                }
            }
            guard sealed else { throw .cipher("AES-GCM protect failed") }
            Self.writeUInt32(flagged, to: packet + length + AESGCM.tagLength)
            return length + AESGCM.tagLength + 4
        }
        guard Self.counterIV(salt: rtcp.salt, ssrc: ssrc, index: UInt64(index), { iv in rtcp.counter?.apply(iv: iv, to: packet + 8, length: length - 8) }) else {
            throw .cipher("AES-CM protect failed")
        }
        Self.writeUInt32(flagged, to: packet + length)
        guard appendTag(rtcp, UnsafeRawBufferPointer(start: packet, count: length + 4), rolloverCounter: nil, at: packet + length + 4) else {
            throw .cipher("HMAC failed")
        }
        return length + 4 + 10
    }

    func unprotectRTCP(_ packet: UnsafeMutablePointer<UInt8>, length: Int) throws(SRTPError) -> Int {
        let tagLength = rtcp.tagLength
        guard length >= 8 + 4 + tagLength else { throw .tooShort }
        let ssrc = Self.readUInt32(packet + 4)
        let body = length - 4 - tagLength
        let isGCM = rtcp.gcm != nil
        let flagged = Self.readUInt32(isGCM ? packet + length - 4 : packet + body)
        let index = UInt64(flagged & 0x7fff_ffff)
        let encrypted = flagged & 0x8000_0000 != 0
        let known = rtcpStreams[ssrc]
        if let known, !known.window.isFresh(index) { throw .replayed }
        if isGCM {
            // Unencrypted SRTCP authenticates the whole compound; encrypted, only its first 8 bytes.
            let clear = encrypted ? 8 : body
            let opened = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: body + 4) { additional in
                let additional = additional.baseAddress!
                additional.update(from: packet, count: clear)
                Self.writeUInt32(flagged, to: additional + clear)
                return Self.gcmIV(salt: rtcp.salt, ssrc: ssrc, index: index) { iv in
                    rtcp.gcm?.open(iv: iv, additional: UnsafeRawBufferPointer(start: additional, count: clear + 4), bytes: packet + clear,
                                   length: body - clear, tag: packet + body)
                }
            }
            guard opened else { throw .authenticationFailed }
        } else {
            let authentic = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: HMACSHA1.length) { expected in
                authenticate(rtcp, UnsafeRawBufferPointer(start: packet, count: body + 4), rolloverCounter: nil, into: expected.baseAddress!)
                    && Self.constantTimeEqual(expected.baseAddress!, packet + body + 4, count: tagLength)
            }
            guard authentic else { throw .authenticationFailed }
            if encrypted {
                guard Self.counterIV(salt: rtcp.salt, ssrc: ssrc, index: index, { iv in rtcp.counter?.apply(iv: iv, to: packet + 8, length: body - 8) }) else {
                    throw .cipher("AES-CM unprotect failed")
                }
            }
        }
        let stream = known ?? Self.stream(ssrc, in: &rtcpStreams)
        stream.window.accept(index)
        return body
    }

    // MARK: Pieces

    /// The RTP header's length with its CSRCs and extension, if `length` holds it.
    static func rtpHeaderLength(_ packet: UnsafePointer<UInt8>, length: Int) -> Int? {
        guard length >= 12, packet[0] >> 6 == 2 else { return nil }
        var header = 12 + 4 * Int(packet[0] & 0x0f)
        if packet[0] & 0x10 != 0 {
            guard length >= header + 4 else { return nil }
            header += 4 + 4 * (Int(packet[header + 2]) << 8 | Int(packet[header + 3]))
        }
        return header <= length ? header : nil
    }

    /// AES-CM's counter block (RFC 3711 §4.1.1): the session salt, XOR the SSRC at bytes 4–7 and
    /// the 48-bit packet index at bytes 8–13.
    private static func counterIV(salt: Salt, ssrc: UInt32, index: UInt64, _ body: (UnsafePointer<UInt8>) -> Bool?) -> Bool {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16) { iv in
            let iv = iv.baseAddress!
            for byte in 0..<14 { iv[byte] = salt[byte] }
            iv[14] = 0
            iv[15] = 0
            for byte in 0..<4 { iv[4 + byte] ^= UInt8(truncatingIfNeeded: ssrc >> (24 - 8 * byte)) }
            for byte in 0..<6 { iv[8 + byte] ^= UInt8(truncatingIfNeeded: index >> (40 - 8 * byte)) }
            return body(iv) ?? false
        }
    }

    /// GCM's 12-byte IV (RFC 7714 §8.1, §9.1): 00 00 ‖ SSRC ‖ 48-bit index, XOR the session
    /// salt. For RTP the index is ROC ‖ sequence number; for SRTCP, its 31-bit index.
    private static func gcmIV(salt: Salt, ssrc: UInt32, index: UInt64, _ body: (UnsafePointer<UInt8>) -> Bool?) -> Bool {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 12) { iv in
            let iv = iv.baseAddress!
            iv[0] = 0
            iv[1] = 0
            writeUInt32(ssrc, to: iv + 2)
            for byte in 0..<6 { iv[6 + byte] = UInt8(truncatingIfNeeded: index >> (40 - 8 * byte)) }
            for byte in 0..<12 { iv[byte] ^= salt[byte] }
            return body(iv) ?? false
        }
    }

    private func authenticate(_ keys: borrowing Keys, _ message: UnsafeRawBufferPointer, rolloverCounter: UInt32?,
                              into output: UnsafeMutablePointer<UInt8>) -> Bool {
        guard let rolloverCounter else {
            return keys.mac?.authenticate(message, suffix: UnsafeRawBufferPointer(start: nil, count: 0), into: output) ?? false
        }
        return withUnsafeBytes(of: rolloverCounter.bigEndian) { keys.mac?.authenticate(message, suffix: $0, into: output) ?? false }
    }

    /// Writes the 10-byte HMAC-SHA1-80 tag of `message` at `tag`.
    private func appendTag(_ keys: borrowing Keys, _ message: UnsafeRawBufferPointer, rolloverCounter: UInt32?, at tag: UnsafeMutablePointer<UInt8>) -> Bool {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: HMACSHA1.length) { full in
            guard authenticate(keys, message, rolloverCounter: rolloverCounter, into: full.baseAddress!) else { return false }
            tag.update(from: full.baseAddress!, count: 10)
            return true
        }
    }

    private static func constantTimeEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, count: Int) -> Bool {
        var difference: UInt8 = 0
        for i in 0..<count { difference |= a[i] ^ b[i] }
        return difference == 0
    }

    static func readUInt32(_ bytes: UnsafePointer<UInt8>) -> UInt32 {
        UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3])
    }

    static func writeUInt32(_ value: UInt32, to bytes: UnsafeMutablePointer<UInt8>) {
        bytes[0] = UInt8(truncatingIfNeeded: value >> 24)
        bytes[1] = UInt8(truncatingIfNeeded: value >> 16)
        bytes[2] = UInt8(truncatingIfNeeded: value >> 8)
        bytes[3] = UInt8(truncatingIfNeeded: value)
    }
}
