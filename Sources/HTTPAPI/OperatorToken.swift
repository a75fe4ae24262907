import Crypto
import Foundation
import Store

/// The operator's bearer token (`GET /api/nodes`): derived from the root secret, so every
/// node sharing `TALLY_SECRET_KEY` accepts the same one, and rotating the secret rotates it.
/// `tally --operator-token` prints it.
public struct OperatorToken: Sendable {
    public let value: String
    static let prefix = "tally_op_"

    public init(secret: MasterSecret) {
        let code = HMAC<SHA256>.authenticationCode(for: Data("tally operator token v1".utf8), using: secret.derivedKey(purpose: "operator"))
        value = Self.prefix + Data(code).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// The token of the root secret a node with these settings uses (creating the secret
    /// file, as the node would, when there is none yet).
    public static func load(secretKey: String?, dataDirectory: URL) throws -> OperatorToken {
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return OperatorToken(secret: try MasterSecret.load(configured: secretKey, dataDirectory: dataDirectory))
    }

    /// Compared in constant time, so the answer's timing tells nothing about the token.
    func matches(_ candidate: String) -> Bool {
        let expected = Array(value.utf8)
        let given = Array(candidate.utf8)
        guard expected.count == given.count else { return false }
        return zip(expected, given).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
