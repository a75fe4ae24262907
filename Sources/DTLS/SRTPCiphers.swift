import COpenSSL

// The ciphers SRTP needs, from OpenSSL's libcrypto. They live here because this module is the
// project's one OpenSSL boundary. Each is keyed once and reused for every packet, so the
// per-packet cost is the cipher itself: no key schedule, no allocation on the cipher side.
// They are noncopyable structs rather than classes so their OpenSSL contexts sit inline in
// whatever owns them: a forwarded copy touches one object fewer per cipher.

/// AES-128 in counter mode (RFC 3711 §4.1.1): SRTP's default cipher and its key derivation.
///
/// Not thread-safe: one per direction of one transport.
public struct AESCounterMode: ~Copyable {
    private let context: OpaquePointer

    public init(key: [UInt8]) throws(DTLSError) {
        guard key.count == 16, let context = EVP_CIPHER_CTX_new() else { throw .openSSL("AES-CTR needs a 16-byte key") }
        guard EVP_EncryptInit_ex(context, EVP_aes_128_ctr(), nil, key, nil) == 1 else {
            EVP_CIPHER_CTX_free(context)
            throw .openSSL("AES-CTR setup failed")
        }
        self.context = context
    }

    deinit { EVP_CIPHER_CTX_free(context) }

    /// XORs `length` bytes at `bytes` with the keystream whose first counter block is `iv`
    /// (16 bytes). Encrypting and decrypting are the same.
    public func apply(iv: UnsafePointer<UInt8>, to bytes: UnsafeMutablePointer<UInt8>, length: Int) -> Bool {
        guard EVP_EncryptInit_ex(context, nil, nil, nil, iv) == 1 else { return false }
        var written: Int32 = 0
        return length == 0 || EVP_EncryptUpdate(context, bytes, &written, bytes, Int32(length)) == 1
    }
}

/// AES-128-GCM with a 12-byte IV and a 16-byte tag (RFC 7714).
///
/// Not thread-safe: one per direction of one transport.
public struct AESGCM: ~Copyable {
    public static let tagLength = 16
    private let sealing: OpaquePointer
    private let opening: OpaquePointer

    public init(key: [UInt8]) throws(DTLSError) {
        guard key.count == 16 else { throw .openSSL("AES-GCM needs a 16-byte key") }
        let sealing = EVP_CIPHER_CTX_new(), opening = EVP_CIPHER_CTX_new()
        guard let sealing, let opening,
              EVP_EncryptInit_ex(sealing, EVP_aes_128_gcm(), nil, key, nil) == 1,
              EVP_DecryptInit_ex(opening, EVP_aes_128_gcm(), nil, key, nil) == 1 else {
            EVP_CIPHER_CTX_free(sealing)
            EVP_CIPHER_CTX_free(opening)
            throw .openSSL("AES-GCM setup failed")
        }
        self.sealing = sealing
        self.opening = opening
    }

    deinit {
        EVP_CIPHER_CTX_free(sealing)
        EVP_CIPHER_CTX_free(opening)
    }

    /// Encrypts `length` bytes at `bytes` in place, authenticates them with the additional data,
    /// and writes the tag to `tag`.
    public func seal(iv: UnsafePointer<UInt8>, additional: UnsafeRawBufferPointer, bytes: UnsafeMutablePointer<UInt8>, length: Int,
                     tag: UnsafeMutablePointer<UInt8>) -> Bool {
        var written: Int32 = 0
        guard EVP_EncryptInit_ex(sealing, nil, nil, nil, iv) == 1,
              feedAdditional(sealing, additional, encrypting: true),
              length == 0 || EVP_EncryptUpdate(sealing, bytes, &written, bytes, Int32(length)) == 1,
              EVP_EncryptFinal_ex(sealing, bytes + Int(written), &written) == 1 else { return false }
        return EVP_CIPHER_CTX_ctrl(sealing, EVP_CTRL_GCM_GET_TAG, Int32(Self.tagLength), tag) == 1
    }

    /// Checks `tag` and decrypts `length` bytes at `bytes` in place; false (and the bytes
    /// unusable) when the packet is not authentic.
    public func open(iv: UnsafePointer<UInt8>, additional: UnsafeRawBufferPointer, bytes: UnsafeMutablePointer<UInt8>, length: Int,
                     tag: UnsafePointer<UInt8>) -> Bool {
        var written: Int32 = 0
        guard EVP_DecryptInit_ex(opening, nil, nil, nil, iv) == 1,
              EVP_CIPHER_CTX_ctrl(opening, EVP_CTRL_GCM_SET_TAG, Int32(Self.tagLength), UnsafeMutableRawPointer(mutating: tag)) == 1,
              feedAdditional(opening, additional, encrypting: false),
              length == 0 || EVP_DecryptUpdate(opening, bytes, &written, bytes, Int32(length)) == 1 else { return false }
        return EVP_DecryptFinal_ex(opening, bytes + Int(written), &written) == 1
    }

    private func feedAdditional(_ context: OpaquePointer, _ additional: UnsafeRawBufferPointer, encrypting: Bool) -> Bool {
        guard let base = additional.baseAddress, additional.count > 0 else { return true }
        var written: Int32 = 0
        let bytes = base.assumingMemoryBound(to: UInt8.self)
        return encrypting ? EVP_EncryptUpdate(context, nil, &written, bytes, Int32(additional.count)) == 1
                          : EVP_DecryptUpdate(context, nil, &written, bytes, Int32(additional.count)) == 1
    }
}

/// HMAC-SHA1 under one key (RFC 2104), for SRTP's authentication tags.
///
/// Not thread-safe: one per direction of one transport.
public struct HMACSHA1: ~Copyable {
    public static let length = 20
    private let context: OpaquePointer

    public init(key: [UInt8]) throws(DTLSError) {
        guard let context = tally_hmac_sha1_new(key, key.count) else { throw .openSSL("HMAC-SHA1 setup failed") }
        self.context = context
    }

    deinit { EVP_MAC_CTX_free(context) }

    /// The MAC of `message` followed by `suffix`, written as 20 bytes to `output`.
    public func authenticate(_ message: UnsafeRawBufferPointer, suffix: UnsafeRawBufferPointer, into output: UnsafeMutablePointer<UInt8>) -> Bool {
        var written = 0
        guard EVP_MAC_init(context, nil, 0, nil) == 1, update(message), update(suffix) else { return false }
        return EVP_MAC_final(context, output, &written, Self.length) == 1 && written == Self.length
    }

    private func update(_ part: UnsafeRawBufferPointer) -> Bool {
        guard let base = part.baseAddress, part.count > 0 else { return true }
        return EVP_MAC_update(context, base.assumingMemoryBound(to: UInt8.self), part.count) == 1
    }
}
