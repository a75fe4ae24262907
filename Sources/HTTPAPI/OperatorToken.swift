import Crypto
import Foundation
import Store

/// A bearer token derived from the root secret for one purpose, so every node sharing
/// `TALLY_SECRET_KEY` accepts the same one, and rotating the secret rotates it.
struct DerivedToken: Sendable {
    let value: String

    init(secret: MasterSecret, purpose: String, prefix: String) {
        let code = HMAC<SHA256>.authenticationCode(for: Data("tally \(purpose) token v1".utf8), using: secret.derivedKey(purpose: purpose))
        value = prefix + Data(code).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// Compared in constant time, so the answer's timing tells nothing about the token.
    func matches(_ candidate: String) -> Bool {
        let expected = Array(value.utf8)
        let given = Array(candidate.utf8)
        guard expected.count == given.count else { return false }
        return zip(expected, given).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// The operator's bearer token (`GET /api/nodes`); `tally --operator-token` prints it.
public struct OperatorToken: Sendable {
    private let token: DerivedToken
    public var value: String { token.value }
    static let prefix = "tally_op_"

    public init(secret: MasterSecret) {
        token = DerivedToken(secret: secret, purpose: "operator", prefix: Self.prefix)
    }

    /// The token of the root secret a node with these settings uses (creating the secret
    /// file, as the node would, when there is none yet).
    public static func load(secretKey: String?, dataDirectory: URL) throws -> OperatorToken {
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return OperatorToken(secret: try MasterSecret.load(configured: secretKey, dataDirectory: dataDirectory))
    }

    func matches(_ candidate: String) -> Bool { token.matches(candidate) }
}

/// The token nodes of one deployment show each other (`POST /api/node/relays`): only a holder of
/// the root secret has it, and it opens nothing but the node-to-node routes.
public struct NodeToken: Sendable {
    private let token: DerivedToken
    public var value: String { token.value }

    public init(secret: MasterSecret) {
        token = DerivedToken(secret: secret, purpose: "node", prefix: "tally_node_")
    }

    func matches(_ candidate: String) -> Bool { token.matches(candidate) }
}
