import COpenSSL

/// One OpenSSL context per role, shared by every session of the process.
///
/// `@unchecked Sendable`: configured once in `init`; OpenSSL allows creating sessions from
/// a context on any thread.
public final class DTLSContext: @unchecked Sendable {
    public enum Role: Sendable { case client, server }

    public let role: Role
    public let certificate: DTLSCertificate
    let context: OpaquePointer

    /// The SRTP profiles offered, best first (RFC 5764 §4.1.2, RFC 7714).
    public static let srtpProfiles = "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80"

    public init(role: Role, certificate: DTLSCertificate) throws(DTLSError) {
        guard let context = SSL_CTX_new(DTLS_method()) else { throw .openSSL("cannot create a DTLS context: \(openSSLErrors())") }
        self.role = role
        self.certificate = certificate
        self.context = context
        guard tally_ctx_set_dtls12_only(context) == 1,
              SSL_CTX_use_certificate(context, certificate.certificate) == 1,
              SSL_CTX_use_PrivateKey(context, certificate.key) == 1,
              SSL_CTX_check_private_key(context) == 1 else {
            throw .openSSL("cannot configure the DTLS context: \(openSSLErrors())")
        }
        // use_srtp returns 0 on success.
        guard SSL_CTX_set_tlsext_use_srtp(context, Self.srtpProfiles) == 0 else { throw .openSSL("cannot enable use_srtp: \(openSSLErrors())") }
        // Peers are self-signed; trust comes from comparing the SDP fingerprint afterwards.
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT) { _, _ in 1 }
        // Bounds what a peer can make us buffer while reassembling its certificate flight.
        tally_ctx_set_max_cert_list(context, 16 * 1024)
    }

    deinit {
        SSL_CTX_free(context)
    }
}
