import COpenSSL
import Crypto
import Foundation
import Logging
import Synchronization
import NIOCore
import NIOHTTP1
import OutboundHTTP

public struct ACMEError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Tokens of HTTP-01 challenges under way and the key authorization each must answer with,
/// served at `/.well-known/acme-challenge/{token}` on the plain HTTP port.
public final class ACMEChallenges: Sendable {
    private let answers = Mutex<[String: String]>([:])

    public init() {}

    public func answer(token: String) -> String? { answers.withLock { $0[token] } }
    func set(_ token: String, _ keyAuthorization: String?) { answers.withLock { $0[token] = keyAuthorization } }
}

/// An ACME (RFC 8555) client that obtains one certificate for a set of DNS names over
/// HTTP-01: account, order, authorizations, challenges, finalize with a CSR, download.
/// Requests are JWS-signed with the account's P-256 key (ES256); a `badNonce` refusal is
/// retried with the fresh nonce it carries.
public final class ACMEClient: Sendable {
    private let directoryURL: URL
    private let http: OutboundHTTPClient
    private let accountKey: P256.Signing.PrivateKey
    private let logger: Logger
    private let nonce = Mutex<String?>(nil)
    /// How long to wait for the CA to validate a challenge or issue the certificate.
    private let patience: Duration

    public init(directory: URL, http: OutboundHTTPClient, accountKey: P256.Signing.PrivateKey, logger: Logger, patience: Duration = .seconds(120)) {
        directoryURL = directory
        self.http = http
        self.accountKey = accountKey
        self.logger = logger
        self.patience = patience
    }

    private struct Directory: Decodable {
        var newNonce: URL
        var newAccount: URL
        var newOrder: URL
    }

    private struct Order: Decodable {
        var status: String
        var authorizations: [URL]
        var finalize: URL
        var certificate: URL?
        var error: Problem?
    }

    private struct Authorization: Decodable {
        struct Challenge: Decodable {
            var type: String
            var url: URL
            var token: String?
            var status: String
            var error: Problem?
        }
        struct Identifier: Decodable { var value: String }
        var status: String
        var identifier: Identifier
        var challenges: [Challenge]
    }

    private struct Problem: Decodable, CustomStringConvertible {
        var type: String?
        var detail: String?
        var description: String { "\(detail ?? "no detail") (\(type ?? "no type"))" }
    }

    /// A PEM certificate chain for `domains`, the first one the subject, bound to `certificateKey`.
    public func issue(domains: [String], certificateKey: P256.Signing.PrivateKey, email: String?, challenges: ACMEChallenges) async throws -> String {
        let directory: Directory = try Self.decode(try await http.send(OutboundHTTPRequest(method: .GET, url: directoryURL)), what: "the ACME directory")
        var account: [String: any Sendable] = ["termsOfServiceAgreed": true]
        if let email { account["contact"] = ["mailto:\(email)"] }
        let registered = try await post(directory.newAccount, payload: account, kid: nil, directory: directory)
        guard let kid = registered.headers.first(name: "Location") else { throw ACMEError("the CA made the account but named no account URL") }
        logger.info("acme: account ready", metadata: ["account": "\(kid)"])

        let identifiers = domains.map { ["type": "dns", "value": $0] }
        let placed = try await post(directory.newOrder, payload: ["identifiers": identifiers], kid: kid, directory: directory)
        guard let orderURL = placed.headers.first(name: "Location").flatMap(URL.init(string:)) else { throw ACMEError("the CA named no order URL") }
        var order: Order = try Self.decode(placed, what: "the new order")

        for authorizationURL in order.authorizations {
            try await authorize(authorizationURL, kid: kid, directory: directory, challenges: challenges)
        }

        let csr = try Self.signingRequest(domains: domains, key: certificateKey)
        order = try Self.decode(try await post(order.finalize, payload: ["csr": Self.base64URL(csr)], kid: kid, directory: directory), what: "the finalized order")
        let deadline = ContinuousClock.now + patience
        while order.status == "processing" || order.status == "pending" || order.status == "ready" {
            guard ContinuousClock.now < deadline else { throw ACMEError("the CA did not issue the certificate within \(patience)") }
            try await Task.sleep(for: .seconds(1))
            order = try Self.decode(try await post(orderURL, payload: nil, kid: kid, directory: directory), what: "the order")
        }
        guard order.status == "valid", let certificateURL = order.certificate else {
            throw ACMEError("the order ended \(order.status): \(order.error?.description ?? "no reason given")")
        }
        let download = try await post(certificateURL, payload: nil, kid: kid, directory: directory, accept: "application/pem-certificate-chain")
        guard let chain = String(bytes: download.body, encoding: .utf8), chain.contains("BEGIN CERTIFICATE") else {
            throw ACMEError("the CA's certificate download is not a PEM chain")
        }
        return chain
    }

    /// Proves control of one name over HTTP-01: publishes the key authorization, tells the CA
    /// to look, and waits for its verdict.
    private func authorize(_ url: URL, kid: String, directory: Directory, challenges: ACMEChallenges) async throws {
        var authorization: Authorization = try Self.decode(try await post(url, payload: nil, kid: kid, directory: directory), what: "an authorization")
        if authorization.status == "valid" { return }
        guard let challenge = authorization.challenges.first(where: { $0.type == "http-01" }), let token = challenge.token else {
            throw ACMEError("the CA offers no http-01 challenge for \(authorization.identifier.value)")
        }
        challenges.set(token, "\(token).\(Self.thumbprint(of: accountKey.publicKey))")
        defer { challenges.set(token, nil) }
        _ = try await post(challenge.url, payload: [String: String](), kid: kid, directory: directory)
        let deadline = ContinuousClock.now + patience
        while authorization.status == "pending" {
            guard ContinuousClock.now < deadline else { throw ACMEError("the CA did not validate \(authorization.identifier.value) within \(patience)") }
            try await Task.sleep(for: .seconds(1))
            authorization = try Self.decode(try await post(url, payload: nil, kid: kid, directory: directory), what: "an authorization")
        }
        guard authorization.status == "valid" else {
            let reason = authorization.challenges.compactMap(\.error).first?.description ?? "no reason given"
            throw ACMEError("the CA refused control of \(authorization.identifier.value): \(reason)")
        }
        logger.info("acme: name validated", metadata: ["name": "\(authorization.identifier.value)"])
    }

    // MARK: JWS

    /// A signed POST (RFC 8555 §6.2); nil payload: POST-as-GET. Retries a stale nonce.
    private func post(_ url: URL, payload: (any Sendable)?, kid: String?, directory: Directory, accept: String? = nil) async throws -> OutboundHTTPResponse {
        let payloadText: String
        if let payload {
            payloadText = Self.base64URL(try JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys]))
        } else {
            payloadText = ""
        }
        for _ in 0..<5 {
            var protected: [String: any Sendable] = ["alg": "ES256", "nonce": try await freshNonce(directory), "url": url.absoluteString]
            if let kid { protected["kid"] = kid } else { protected["jwk"] = Self.jwk(of: accountKey.publicKey) }
            let protectedText = Self.base64URL(try JSONSerialization.data(withJSONObject: protected, options: [.sortedKeys]))
            let signature = try accountKey.signature(for: Data("\(protectedText).\(payloadText)".utf8))
            let body = try JSONSerialization.data(withJSONObject: ["protected": protectedText, "payload": payloadText,
                                                                   "signature": Self.base64URL(signature.rawRepresentation)])
            var headers = [("Content-Type", "application/jose+json")]
            if let accept { headers.append(("Accept", accept)) }
            let response = try await http.send(OutboundHTTPRequest(method: .POST, url: url, headers: headers, body: Array(body)))
            remember(response)
            if (200..<300).contains(response.status.code) { return response }
            let problem = try? JSONDecoder().decode(Problem.self, from: Data(response.body))
            if problem?.type == "urn:ietf:params:acme:error:badNonce" { continue }
            throw ACMEError("\(url.path): \(response.status.code) \(problem?.description ?? response.status.reasonPhrase)")
        }
        throw ACMEError("\(url.path): the CA refused five nonces in a row")
    }

    private func freshNonce(_ directory: Directory) async throws -> String {
        if let saved = nonce.withLock({ value -> String? in defer { value = nil }; return value }) { return saved }
        let response = try await http.send(OutboundHTTPRequest(method: .HEAD, url: directory.newNonce))
        guard let value = response.headers.first(name: "Replay-Nonce") else { throw ACMEError("the CA gave no nonce") }
        return value
    }

    private func remember(_ response: OutboundHTTPResponse) {
        if let value = response.headers.first(name: "Replay-Nonce") { nonce.withLock { $0 = value } }
    }

    private static func decode<T: Decodable>(_ response: OutboundHTTPResponse, what: String) throws -> T {
        guard (200..<300).contains(response.status.code) else { throw ACMEError("\(what): \(response.status.code) \(response.status.reasonPhrase)") }
        do {
            return try JSONDecoder().decode(T.self, from: Data(response.body))
        } catch {
            throw ACMEError("\(what) is not the JSON ACME describes: \(error)")
        }
    }

    static func base64URL(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// The account key as a JWK (RFC 7518 §6.2), members in the order RFC 7638 hashes them.
    static func jwk(of key: P256.Signing.PublicKey) -> [String: String] {
        let point = key.x963Representation
        return ["crv": "P-256", "kty": "EC", "x": base64URL(point.dropFirst().prefix(32)), "y": base64URL(point.suffix(32))]
    }

    /// RFC 7638 thumbprint: SHA-256 of the JWK's required members, sorted, without spaces.
    static func thumbprint(of key: P256.Signing.PublicKey) -> String {
        let jwk = jwk(of: key)
        let canonical = "{\"crv\":\"\(jwk["crv"]!)\",\"kty\":\"\(jwk["kty"]!)\",\"x\":\"\(jwk["x"]!)\",\"y\":\"\(jwk["y"]!)\"}"
        return base64URL(Data(SHA256.hash(data: Data(canonical.utf8))))
    }

    /// The DER CSR for `domains`, the first also the subject's CN when it fits one (64 characters).
    static func signingRequest(domains: [String], key: P256.Signing.PrivateKey) throws -> Data {
        var der: UnsafeMutablePointer<UInt8>?
        let commonName = domains.first.flatMap { $0.utf8.count <= 64 ? $0 : nil }
        let length = tally_make_csr(key.pemRepresentation, commonName, domains.map { "DNS:\($0)" }.joined(separator: ","), &der)
        guard length > 0, let der else { throw ACMEError("cannot make a certificate signing request for \(domains)") }
        defer { tally_free(der) }
        return Data(bytes: der, count: Int(length))
    }
}
