import DTLS

/// One direction of an SRTP session: the session keys derived from a master key and salt
/// (RFC 3711 §4.3), and what each SSRC has sent: its rollover counter, replay window and, for
/// SRTCP, its index.
///
/// Packets are transformed in place through raw pointers, as they sit in I/O buffers; every
/// length is checked before a byte is touched.
final class SRTPContext {
    private enum Transform {
        /// AES-CM with HMAC-SHA1-80 and a 14-byte session salt.
        case counter(AESCounterMode, HMACSHA1, salt: [UInt8])
        /// AEAD_AES_128_GCM with a 12-byte session salt.
        case gcm(AESGCM, salt: [UInt8])

        var tagLength: Int {
            switch self {
            case .counter: 10
            case .gcm: AESGCM.tagLength
            }
        }
    }

    private final class Stream {
        var window = ReplayWindow()
        /// The SRTCP index the next protected compound gets.
        var nextRTCPIndex: UInt32 = 0
    }

    private let rtp: Transform
    private let rtcp: Transform
    private var rtpStreams: [UInt32: Stream] = [:]
    private var rtcpStreams: [UInt32: Stream] = [:]
    /// The stream used last: a transport mostly sends runs of one SSRC, so this saves a lookup.
    private var lastRTP: (ssrc: UInt32, stream: Stream)?

    init(profile: SRTPKeyingMaterial.Profile, masterKey: [UInt8], masterSalt: [UInt8]) throws(SRTPError) {
        guard masterKey.count == profile.keyLength, masterSalt.count == profile.saltLength else {
            throw .cipher("a \(profile) master key is \(profile.keyLength) bytes and its salt \(profile.saltLength)")
        }
        do {
            let prf = try AESCounterMode(key: masterKey)
            func derive(_ label: UInt8, _ length: Int) throws(SRTPError) -> [UInt8] {
                try Self.derive(prf, masterSalt: masterSalt, label: label, length: length)
            }
            switch profile {
            case .aes128CMSHA1_80:
                rtp = .counter(try AESCounterMode(key: derive(0, 16)), try HMACSHA1(key: derive(1, 20)), salt: try derive(2, 14))
                rtcp = .counter(try AESCounterMode(key: derive(3, 16)), try HMACSHA1(key: derive(4, 20)), salt: try derive(5, 14))
            case .aeadAES128GCM:
                rtp = .gcm(try AESGCM(key: derive(0, 16)), salt: try derive(2, 12))
                rtcp = .gcm(try AESGCM(key: derive(3, 16)), salt: try derive(5, 12))
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
    private static func derive(_ prf: AESCounterMode, masterSalt: [UInt8], label: UInt8, length: Int) throws(SRTPError) -> [UInt8] {
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
        let stream = rtpStream(ssrc)
        let index = stream.window.estimate(sequence)
        stream.window.accept(index)
        let tag = packet + length
        switch rtp {
        case .counter(let cipher, let mac, let salt):
            guard Self.counterIV(salt: salt, ssrc: ssrc, index: index, { iv in cipher.apply(iv: iv, to: packet + header, length: length - header) }),
                  Self.appendTag(mac, UnsafeRawBufferPointer(start: packet, count: length), rolloverCounter: UInt32(truncatingIfNeeded: index >> 16), at: tag)
            else { throw .cipher("AES-CM protect failed") }
            return length + 10
        case .gcm(let aead, let salt):
            let sealed = Self.gcmIV(salt: salt, ssrc: ssrc, index: index) { iv in
                aead.seal(iv: iv, additional: UnsafeRawBufferPointer(start: packet, count: header), bytes: packet + header, length: length - header, tag: tag)
            }
            guard sealed else { throw .cipher("AES-GCM protect failed") }
            return length + AESGCM.tagLength
        }
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
        switch rtp {
        case .counter(let cipher, let mac, let salt):
            let authentic = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: HMACSHA1.length) { expected in
                Self.authenticate(mac, UnsafeRawBufferPointer(start: packet, count: body), rolloverCounter: UInt32(truncatingIfNeeded: index >> 16), into: expected.baseAddress!)
                    && Self.constantTimeEqual(expected.baseAddress!, packet + body, count: tagLength)
            }
            guard authentic else { throw .authenticationFailed }
            guard Self.counterIV(salt: salt, ssrc: ssrc, index: index, { iv in cipher.apply(iv: iv, to: packet + header, length: body - header) }) else {
                throw .cipher("AES-CM unprotect failed")
            }
        case .gcm(let aead, let salt):
            let opened = Self.gcmIV(salt: salt, ssrc: ssrc, index: index) { iv in
                aead.open(iv: iv, additional: UnsafeRawBufferPointer(start: packet, count: header), bytes: packet + header, length: body - header, tag: packet + body)
            }
            guard opened else { throw .authenticationFailed }
        }
        let stream = known ?? rtpStream(ssrc)
        stream.window.accept(index)
        return body
    }

    private func rtpStream(_ ssrc: UInt32) -> Stream {
        if let last = lastRTP, last.ssrc == ssrc { return last.stream }
        let stream: Stream
        if let existing = rtpStreams[ssrc] {
            stream = existing
        } else {
            stream = Stream()
            rtpStreams[ssrc] = stream
        }
        lastRTP = (ssrc, stream)
        return stream
    }

    // MARK: RTCP

    private func rtcpStream(_ ssrc: UInt32) -> Stream {
        if let existing = rtcpStreams[ssrc] { return existing }
        let created = Stream()
        rtcpStreams[ssrc] = created
        return created
    }

    /// Layout after protecting (RFC 3711 §3.4, RFC 7714 §9): the first 8 bytes stay clear;
    /// AES-CM appends E‖index then the tag, GCM the tag then E‖index.
    func protectRTCP(_ packet: UnsafeMutablePointer<UInt8>, length: Int) throws(SRTPError) -> Int {
        guard length >= 8 else { throw .tooShort }
        let ssrc = Self.readUInt32(packet + 4)
        let stream = rtcpStream(ssrc)
        let index = stream.nextRTCPIndex
        stream.nextRTCPIndex = (index + 1) & 0x7fff_ffff
        let flagged = 0x8000_0000 | index
        switch rtcp {
        case .counter(let cipher, let mac, let salt):
            guard Self.counterIV(salt: salt, ssrc: ssrc, index: UInt64(index), { iv in cipher.apply(iv: iv, to: packet + 8, length: length - 8) }) else {
                throw .cipher("AES-CM protect failed")
            }
            Self.writeUInt32(flagged, to: packet + length)
            guard Self.appendTag(mac, UnsafeRawBufferPointer(start: packet, count: length + 4), rolloverCounter: nil, at: packet + length + 4) else {
                throw .cipher("HMAC failed")
            }
            return length + 4 + 10
        case .gcm(let aead, let salt):
            let sealed = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 12) { additional in
                let additional = additional.baseAddress!
                additional.update(from: packet, count: 8)
                Self.writeUInt32(flagged, to: additional + 8)
                return Self.gcmIV(salt: salt, ssrc: ssrc, index: UInt64(index)) { iv in
                    aead.seal(iv: iv, additional: UnsafeRawBufferPointer(start: additional, count: 12), bytes: packet + 8, length: length - 8, tag: packet + length)
                }
            }
            guard sealed else { throw .cipher("AES-GCM protect failed") }
            Self.writeUInt32(flagged, to: packet + length + AESGCM.tagLength)
            return length + AESGCM.tagLength + 4
        }
    }

    func unprotectRTCP(_ packet: UnsafeMutablePointer<UInt8>, length: Int) throws(SRTPError) -> Int {
        let tagLength = rtcp.tagLength
        guard length >= 8 + 4 + tagLength else { throw .tooShort }
        let ssrc = Self.readUInt32(packet + 4)
        let body = length - 4 - tagLength
        let flagged: UInt32
        switch rtcp {
        case .counter: flagged = Self.readUInt32(packet + body)
        case .gcm: flagged = Self.readUInt32(packet + length - 4)
        }
        let index = UInt64(flagged & 0x7fff_ffff)
        let encrypted = flagged & 0x8000_0000 != 0
        let known = rtcpStreams[ssrc]
        if let known, !known.window.isFresh(index) { throw .replayed }
        switch rtcp {
        case .counter(let cipher, let mac, let salt):
            let authentic = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: HMACSHA1.length) { expected in
                Self.authenticate(mac, UnsafeRawBufferPointer(start: packet, count: body + 4), rolloverCounter: nil, into: expected.baseAddress!)
                    && Self.constantTimeEqual(expected.baseAddress!, packet + body + 4, count: tagLength)
            }
            guard authentic else { throw .authenticationFailed }
            if encrypted {
                guard Self.counterIV(salt: salt, ssrc: ssrc, index: index, { iv in cipher.apply(iv: iv, to: packet + 8, length: body - 8) }) else {
                    throw .cipher("AES-CM unprotect failed")
                }
            }
        case .gcm(let aead, let salt):
            // Unencrypted SRTCP authenticates the whole compound; encrypted, only its first 8 bytes.
            let clear = encrypted ? 8 : body
            let opened = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: body + 4) { additional in
                let additional = additional.baseAddress!
                additional.update(from: packet, count: clear)
                Self.writeUInt32(flagged, to: additional + clear)
                return Self.gcmIV(salt: salt, ssrc: ssrc, index: index) { iv in
                    aead.open(iv: iv, additional: UnsafeRawBufferPointer(start: additional, count: clear + 4), bytes: packet + clear,
                              length: body - clear, tag: packet + body)
                }
            }
            guard opened else { throw .authenticationFailed }
        }
        let stream = known ?? rtcpStream(ssrc)
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
    private static func counterIV(salt: [UInt8], ssrc: UInt32, index: UInt64, _ body: (UnsafePointer<UInt8>) -> Bool) -> Bool {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16) { iv in
            let iv = iv.baseAddress!
            salt.withUnsafeBufferPointer { iv.update(from: $0.baseAddress!, count: 14) }
            iv[14] = 0
            iv[15] = 0
            for byte in 0..<4 { iv[4 + byte] ^= UInt8(truncatingIfNeeded: ssrc >> (24 - 8 * byte)) }
            for byte in 0..<6 { iv[8 + byte] ^= UInt8(truncatingIfNeeded: index >> (40 - 8 * byte)) }
            return body(iv)
        }
    }

    /// GCM's 12-byte IV (RFC 7714 §8.1, §9.1): 00 00 ‖ SSRC ‖ 48-bit index, XOR the session
    /// salt. For RTP the index is ROC ‖ sequence number; for SRTCP, its 31-bit index.
    private static func gcmIV(salt: [UInt8], ssrc: UInt32, index: UInt64, _ body: (UnsafePointer<UInt8>) -> Bool) -> Bool {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 12) { iv in
            let iv = iv.baseAddress!
            iv[0] = 0
            iv[1] = 0
            writeUInt32(ssrc, to: iv + 2)
            for byte in 0..<6 { iv[6 + byte] = UInt8(truncatingIfNeeded: index >> (40 - 8 * byte)) }
            salt.withUnsafeBufferPointer { salt in for byte in 0..<12 { iv[byte] ^= salt[byte] } }
            return body(iv)
        }
    }

    private static func authenticate(_ mac: HMACSHA1, _ message: UnsafeRawBufferPointer, rolloverCounter: UInt32?, into output: UnsafeMutablePointer<UInt8>) -> Bool {
        guard let rolloverCounter else { return mac.authenticate(message, suffix: UnsafeRawBufferPointer(start: nil, count: 0), into: output) }
        return withUnsafeBytes(of: rolloverCounter.bigEndian) { mac.authenticate(message, suffix: $0, into: output) }
    }

    /// Writes the 10-byte HMAC-SHA1-80 tag of `message` at `tag`.
    private static func appendTag(_ mac: HMACSHA1, _ message: UnsafeRawBufferPointer, rolloverCounter: UInt32?, at tag: UnsafeMutablePointer<UInt8>) -> Bool {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: HMACSHA1.length) { full in
            guard authenticate(mac, message, rolloverCounter: rolloverCounter, into: full.baseAddress!) else { return false }
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
