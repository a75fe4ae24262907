import Crypto
import Foundation
import Logging
import OutboundHTTP

/// Keeps a certificate from an ACME CA for `domains` in the data directory (`acme/`): the
/// account key, the certificate key and chain, and the names they are for. At start a stored
/// certificate for the same names is served if it is not due; otherwise, and whenever one is
/// due (a third of its lifetime left, as Let's Encrypt advises), a new one is obtained while
/// the old one goes on serving.
public final class ACMECertificates: Sendable {
    public struct Settings: Sendable {
        public var domains: [String]
        public var email: String?
        public var directory: URL
        public var folder: URL

        public init(domains: [String], email: String?, directory: URL, folder: URL) {
            self.domains = domains
            self.email = email
            self.directory = directory
            self.folder = folder
        }
    }

    public static let letsEncrypt = URL(string: "https://acme-v02.api.letsencrypt.org/directory")!

    private let settings: Settings
    private let client: ACMEClient
    private let certificate: ServerCertificate
    public let challenges: ACMEChallenges
    private let logger: Logger

    public init(settings: Settings, http: OutboundHTTPClientFactory, certificate: ServerCertificate, challenges: ACMEChallenges, logger: Logger) throws {
        self.settings = settings
        self.certificate = certificate
        self.challenges = challenges
        self.logger = logger
        try FileManager.default.createDirectory(at: settings.folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let accountKey = try Self.key(at: settings.folder.appendingPathComponent("account.key.pem"))
        client = ACMEClient(directory: settings.directory, http: try http(), accountKey: accountKey, logger: logger)
    }

    private var chainFile: URL { settings.folder.appendingPathComponent("certificate.pem") }
    private var keyFile: URL { settings.folder.appendingPathComponent("certificate.key.pem") }
    private var namesFile: URL { settings.folder.appendingPathComponent("certificate.names") }

    /// Serves the stored certificate if it is for these names; true when one was installed.
    @discardableResult
    public func loadStored() -> Bool {
        guard let names = try? String(contentsOf: namesFile, encoding: .utf8), names == settings.domains.joined(separator: ","),
              let chain = try? Data(contentsOf: chainFile), let key = try? Data(contentsOf: keyFile),
              let loaded = try? certificate.install(chainPEM: Array(chain), keyPEM: Array(key)) else { return false }
        logger.info("acme: serving the stored certificate", metadata: ["names": "\(names)", "not_after": "\(loaded.notAfter)"])
        return true
    }

    /// When the current certificate should be replaced: now if there is none.
    public func renewalDate(now: Date = Date()) -> Date {
        guard let loaded = certificate.loaded else { return now }
        let lifetime = loaded.notAfter.timeIntervalSince(loaded.notBefore)
        return loaded.notAfter.addingTimeInterval(-lifetime / 3)
    }

    /// Obtains a certificate now, stores it and serves it.
    public func renew() async throws {
        let key = P256.Signing.PrivateKey()
        logger.info("acme: asking for a certificate", metadata: ["names": "\(settings.domains.joined(separator: ","))", "directory": "\(settings.directory)"])
        let chain = try await client.issue(domains: settings.domains, certificateKey: key, email: settings.email, challenges: challenges)
        let loaded = try certificate.install(chainPEM: Array(chain.utf8), keyPEM: Array(key.pemRepresentation.utf8))
        try Self.writePrivate(Data(key.pemRepresentation.utf8), to: keyFile)
        try Data(chain.utf8).write(to: chainFile, options: .atomic)
        try Data(settings.domains.joined(separator: ",").utf8).write(to: namesFile, options: .atomic)
        logger.notice("acme: certificate obtained", metadata: ["names": "\(settings.domains.joined(separator: ","))", "not_after": "\(loaded.notAfter)"])
    }

    /// Renews whenever due until cancelled. A failure is retried after a tenth of the time
    /// left (between 5 s and an hour), so an outage at the CA is ridden out before expiry.
    public func run() async {
        while !Task.isCancelled {
            let wait = renewalDate().timeIntervalSinceNow
            if wait > 0 {
                try? await Task.sleep(for: .seconds(min(wait, 12 * 3600)))
                continue
            }
            do {
                try await renew()
            } catch {
                let left = certificate.loaded?.notAfter.timeIntervalSinceNow ?? 0
                let retry = min(3600, max(5, left / 10))
                logger.error("acme: no certificate this time; trying again", metadata: ["error": "\(error)", "retry_seconds": "\(Int(retry))"])
                try? await Task.sleep(for: .seconds(retry))
            }
        }
    }

    private static func key(at file: URL) throws -> P256.Signing.PrivateKey {
        if let pem = try? String(contentsOf: file, encoding: .utf8) { return try P256.Signing.PrivateKey(pemRepresentation: pem) }
        let key = P256.Signing.PrivateKey()
        try writePrivate(Data(key.pemRepresentation.utf8), to: file)
        return key
    }

    private static func writePrivate(_ data: Data, to file: URL) throws {
        let temporary = file.appendingPathExtension("tmp")
        guard FileManager.default.createFile(atPath: temporary.path, contents: data, attributes: [.posixPermissions: 0o600]),
              rename(temporary.path, file.path) == 0 else {
            throw ACMEError("cannot write \(file.path): \(String(cString: strerror(errno)))")
        }
    }
}

/// Makes the HTTP client the ACME client talks through (with the operator's outbound policy
/// and any extra trusted roots).
public typealias OutboundHTTPClientFactory = @Sendable () throws -> OutboundHTTPClient
