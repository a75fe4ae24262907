import COpenSSL

/// The process's DTLS identity: an ECDSA P-256 key and a self-signed certificate, whose
/// SHA-256 fingerprint goes into every SDP answer (RFC 8827 §6.5).
///
/// `@unchecked Sendable`: the key and certificate are never changed after creation, and
/// OpenSSL's reference-counted objects may be read from any thread.
public final class DTLSCertificate: @unchecked Sendable {
    let key: OpaquePointer
    let certificate: OpaquePointer
    /// Colon-separated upper-case hex, as SDP writes it.
    public let fingerprintSHA256: String

    public init(commonName: String = "tally", validityDays: Int = 30) throws(DTLSError) {
        guard let key = tally_generate_p256_key() else { throw .openSSL("cannot generate a P-256 key: \(openSSLErrors())") }
        guard let certificate = X509_new() else {
            EVP_PKEY_free(key)
            throw .openSSL("cannot allocate a certificate")
        }
        self.key = key
        self.certificate = certificate
        var serial = [UInt8](repeating: 0, count: 8)
        RAND_bytes(&serial, 8)
        serial[0] &= 0x7F
        let number = serial.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        X509_set_version(certificate, 2)
        ASN1_INTEGER_set_uint64(X509_get_serialNumber(certificate), number)
        // A day of slack either side for peers whose clocks are off.
        X509_gmtime_adj(X509_getm_notBefore(certificate), -86400)
        X509_gmtime_adj(X509_getm_notAfter(certificate), Int(validityDays) * 86400)
        let name = X509_get_subject_name(certificate)
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, commonName, -1, -1, 0)
        X509_set_issuer_name(certificate, name)
        X509_set_pubkey(certificate, key)
        guard X509_sign(certificate, key, EVP_sha256()) > 0 else { throw .openSSL("cannot sign the certificate: \(openSSLErrors())") }
        fingerprintSHA256 = try Self.fingerprint(certificate)
    }

    deinit {
        X509_free(certificate)
        EVP_PKEY_free(key)
    }

    static func fingerprint(_ certificate: OpaquePointer) throws(DTLSError) -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_digest(certificate, EVP_sha256(), &digest, &length) == 1 else { throw .openSSL("cannot hash a certificate") }
        return digest.prefix(Int(length)).map { hex($0) }.joined(separator: ":")
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }
}

/// OpenSSL's error queue as one line, emptied.
func openSSLErrors() -> String {
    var messages: [String] = []
    while case let code = ERR_get_error(), code != 0 {
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        messages.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    return messages.isEmpty ? "no detail" : messages.joined(separator: "; ")
}
