import COpenSSL

/// The SRTP keys a finished handshake exports (RFC 5764 §4.2).
public struct SRTPKeyingMaterial: Sendable, Equatable {
    public enum Profile: UInt16, Sendable {
        case aes128CMSHA1_80 = 0x0001
        case aeadAES128GCM = 0x0007

        public var keyLength: Int { 16 }
        public var saltLength: Int { self == .aeadAES128GCM ? 12 : 14 }
    }

    public var profile: Profile
    /// What this side encrypts with, and what it decrypts the peer's packets with.
    public var localKey: [UInt8]
    public var localSalt: [UInt8]
    public var remoteKey: [UInt8]
    public var remoteSalt: [UInt8]

    public init(profile: Profile, localKey: [UInt8], localSalt: [UInt8], remoteKey: [UInt8], remoteSalt: [UInt8]) {
        self.profile = profile
        self.localKey = localKey
        self.localSalt = localSalt
        self.remoteKey = remoteKey
        self.remoteSalt = remoteSalt
    }

    /// The same keys seen from the other end.
    public var mirrored: SRTPKeyingMaterial {
        SRTPKeyingMaterial(profile: profile, localKey: remoteKey, localSalt: remoteSalt, remoteKey: localKey, remoteSalt: localSalt)
    }
}

/// One DTLS 1.2 association over memory BIOs: records in, records out, no sockets.
///
/// Not thread-safe: owned by one event loop, like the transport that feeds it.
public final class DTLSSession {
    public enum Action: Equatable {
        case send([UInt8])
        /// The handshake finished and the peer's certificate matched the SDP fingerprint.
        case connected(SRTPKeyingMaterial)
        case applicationData([UInt8])
        case failed(String)
        /// The peer sent close_notify.
        case closed
    }

    public let role: DTLSContext.Role
    public let remoteFingerprint: String
    public private(set) var isConnected = false
    public private(set) var isFinished = false
    private let ssl: OpaquePointer
    private let incoming: OpaquePointer
    private let outgoing: OpaquePointer
    private let mtu: Int
    private let context: DTLSContext

    /// `remoteFingerprint` is the SDP's SHA-256 value, colon-separated hex in any case.
    public init(context: DTLSContext, remoteFingerprint: String, mtu: Int = 1200) throws(DTLSError) {
        guard let ssl = SSL_new(context.context), let incoming = BIO_new(BIO_s_mem()), let outgoing = BIO_new(BIO_s_mem()) else {
            throw .openSSL("cannot create a DTLS session: \(openSSLErrors())")
        }
        tally_bio_mem_eof_is_retry(incoming)
        tally_bio_mem_eof_is_retry(outgoing)
        SSL_set_bio(ssl, incoming, outgoing)
        tally_set_mtu(ssl, mtu - 28)
        if context.role == .server { SSL_set_accept_state(ssl) } else { SSL_set_connect_state(ssl) }
        self.ssl = ssl
        self.incoming = incoming
        self.outgoing = outgoing
        self.mtu = mtu
        self.context = context
        role = context.role
        self.remoteFingerprint = remoteFingerprint.uppercased()
    }

    deinit {
        SSL_free(ssl)
    }

    /// A client sends its ClientHello; a server waits for one.
    public func start() -> [Action] {
        role == .client ? advanceHandshake() : []
    }

    /// Feeds one datagram of DTLS records from the peer.
    public func receive(_ datagram: [UInt8]) -> [Action] {
        guard !isFinished else { return [] }
        do {
            _ = try DTLSRecord.split(datagram)
        } catch {
            return []
        }
        datagram.withUnsafeBytes { _ = BIO_write(incoming, $0.baseAddress, Int32($0.count)) }
        return isConnected ? readApplicationData() : advanceHandshake()
    }

    /// When OpenSSL wants to retransmit a flight, from now; nil when no timer runs.
    public var retransmissionTimeout: Duration? {
        var timeout = timeval()
        guard !isFinished, tally_dtls_get_timeout(ssl, &timeout) == 1 else { return nil }
        return .seconds(Int64(timeout.tv_sec)) + .microseconds(Int64(timeout.tv_usec))
    }

    /// Call when `retransmissionTimeout` has passed: resends the last flight, or gives up.
    public func handleTimeout() -> [Action] {
        guard !isFinished else { return [] }
        if tally_dtls_handle_timeout(ssl) < 0 {
            return fail("handshake timed out: \(openSSLErrors())")
        }
        return drain()
    }

    /// Sends close_notify.
    public func close() -> [Action] {
        guard !isFinished else { return [] }
        SSL_shutdown(ssl)
        isFinished = true
        return drain()
    }

    private func advanceHandshake() -> [Action] {
        let result = SSL_do_handshake(ssl)
        var actions = drain()
        if result == 1 {
            do {
                let material = try finishHandshake()
                isConnected = true
                actions.append(.connected(material))
                actions += readApplicationData()
            } catch {
                actions += fail(error.description)
            }
            return actions
        }
        let code = SSL_get_error(ssl, result)
        if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE { return actions }
        return actions + fail("handshake failed: \(openSSLErrors())")
    }

    private func finishHandshake() throws(DTLSError) -> SRTPKeyingMaterial {
        guard let peer = SSL_get1_peer_certificate(ssl) else { throw .openSSL("the peer sent no certificate") }
        defer { X509_free(peer) }
        let actual = try DTLSCertificate.fingerprint(peer)
        guard actual == remoteFingerprint else { throw .fingerprintMismatch(expected: remoteFingerprint, actual: actual) }
        guard let selected = SSL_get_selected_srtp_profile(ssl),
              let profile = SRTPKeyingMaterial.Profile(rawValue: UInt16(selected.pointee.id)) else { throw .noSRTPProfile }
        let total = 2 * (profile.keyLength + profile.saltLength)
        var material = [UInt8](repeating: 0, count: total)
        let label = "EXTRACTOR-dtls_srtp"
        guard SSL_export_keying_material(ssl, &material, total, label, label.utf8.count, nil, 0, 0) == 1 else {
            throw .openSSL("cannot export SRTP keys: \(openSSLErrors())")
        }
        // RFC 5764 §4.2: client key, server key, client salt, server salt.
        let k = profile.keyLength
        let s = profile.saltLength
        let clientKey = Array(material[0..<k])
        let serverKey = Array(material[k..<(2 * k)])
        let clientSalt = Array(material[(2 * k)..<(2 * k + s)])
        let serverSalt = Array(material[(2 * k + s)..<(2 * k + 2 * s)])
        return role == .client
            ? SRTPKeyingMaterial(profile: profile, localKey: clientKey, localSalt: clientSalt, remoteKey: serverKey, remoteSalt: serverSalt)
            : SRTPKeyingMaterial(profile: profile, localKey: serverKey, localSalt: serverSalt, remoteKey: clientKey, remoteSalt: clientSalt)
    }

    private func readApplicationData() -> [Action] {
        var actions: [Action] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = SSL_read(ssl, &buffer, Int32(buffer.count))
            if count > 0 {
                actions.append(.applicationData(Array(buffer.prefix(Int(count)))))
                continue
            }
            let code = SSL_get_error(ssl, count)
            if code == SSL_ERROR_ZERO_RETURN {
                isFinished = true
                actions.append(.closed)
            } else if code != SSL_ERROR_WANT_READ {
                actions += fail("read failed: \(openSSLErrors())")
            }
            return actions + drain()
        }
    }

    /// What OpenSSL wrote, repacked into datagrams that respect the MTU.
    private func drain() -> [Action] {
        let pending = tally_bio_pending(outgoing)
        guard pending > 0 else { return [] }
        var stream = [UInt8](repeating: 0, count: pending)
        let read = BIO_read(outgoing, &stream, Int32(pending))
        guard read > 0 else { return [] }
        let records = (try? DTLSRecord.packetize(Array(stream.prefix(Int(read))), mtu: mtu)) ?? [Array(stream.prefix(Int(read)))]
        return records.map { .send($0) }
    }

    private func fail(_ reason: String) -> [Action] {
        isFinished = true
        return [.failed(reason)]
    }
}
