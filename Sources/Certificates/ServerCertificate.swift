import Foundation
import Logging
import NIOSSL
import Synchronization

/// The certificate HTTPS serves now. Each new connection takes the current one, so a renewed
/// or replaced certificate is served from the next handshake on, with no restart.
public final class ServerCertificate: Sendable {
    public struct Loaded: Sendable {
        public let context: NIOSSLContext
        public let notAfter: Date
        public let notBefore: Date
    }

    private let current = Mutex<Loaded?>(nil)

    public init() {}

    public var loaded: Loaded? { current.withLock { $0 } }

    /// Checks and installs a PEM chain (leaf first) and its PEM private key.
    @discardableResult
    public func install(chainPEM: [UInt8], keyPEM: [UInt8]) throws -> Loaded {
        let loaded = try Self.load(chainPEM: chainPEM, keyPEM: keyPEM)
        current.withLock { $0 = loaded }
        return loaded
    }

    static func load(chainPEM: [UInt8], keyPEM: [UInt8]) throws -> Loaded {
        let chain = try NIOSSLCertificate.fromPEMBytes(chainPEM)
        guard let leaf = chain.first else { throw ACMEError("no certificate in the PEM file") }
        let key = try NIOSSLPrivateKey(bytes: keyPEM, format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        // NIOSSL checks here that the key belongs to the leaf.
        let context = try NIOSSLContext(configuration: configuration)
        return Loaded(context: context, notAfter: Date(timeIntervalSince1970: TimeInterval(leaf.notValidAfter)),
                      notBefore: Date(timeIntervalSince1970: TimeInterval(leaf.notValidBefore)))
    }
}

/// `TALLY_TLS_CERT` and `TALLY_TLS_KEY`: PEM files an operator (or certbot) keeps up to date.
/// Read at start, and again whenever either changes; a change that does not load (a key
/// written before its certificate, say) is logged and the previous certificate kept.
public final class CertificateFiles: Sendable {
    public let certificatePath: String
    public let keyPath: String
    private let certificate: ServerCertificate
    private let logger: Logger
    private let seen = Mutex<[String]>([])

    public init(certificatePath: String, keyPath: String, certificate: ServerCertificate, logger: Logger) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.certificate = certificate
        self.logger = logger
    }

    /// Loads the files now; throws when they do not make a usable certificate.
    public func load() throws {
        let stamp = stamps()
        do {
            let chain = try Array(Data(contentsOf: URL(fileURLWithPath: certificatePath)))
            let key = try Array(Data(contentsOf: URL(fileURLWithPath: keyPath)))
            let loaded = try certificate.install(chainPEM: chain, keyPEM: key)
            seen.withLock { $0 = stamp }
            logger.info("tls: certificate loaded", metadata: ["file": "\(certificatePath)", "not_after": "\(loaded.notAfter)"])
        } catch {
            seen.withLock { $0 = stamp }
            throw ACMEError("TALLY_TLS_CERT/TALLY_TLS_KEY (\(certificatePath), \(keyPath)) do not load: \(error)")
        }
    }

    /// Polls the files every `interval` until cancelled, reloading on a change.
    public func watch(every interval: Duration = .seconds(5)) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            guard stamps() != seen.withLock({ $0 }) else { continue }
            do {
                try load()
            } catch {
                logger.error("tls: keeping the previous certificate", metadata: ["error": "\(error)"])
            }
        }
    }

    private func stamps() -> [String] {
        [certificatePath, keyPath].map { path in
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            return "\((attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)/\(attributes?[.size] as? Int ?? -1)"
        }
    }
}
