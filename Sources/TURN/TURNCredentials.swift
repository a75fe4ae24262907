import Crypto
import Foundation

/// Time-limited TURN credentials in the TURN REST style that coturn's `use-auth-secret`
/// checks: the username is "expiry:identity" (expiry in Unix seconds), the password the
/// base64 HMAC-SHA1 of the username under a secret the servers share. Nothing is stored: any
/// node with the secret can check any credential, and none outlives its expiry.
public struct TURNCredentials: Sendable {
    private let secret: SymmetricKey

    public init(secret: [UInt8]) {
        self.secret = SymmetricKey(data: secret)
    }

    /// A username and password for `identity` that work until `expires`.
    public func issue(identity: String, expires: Date) -> (username: String, password: String) {
        // A colon would end the expiry early for whoever parses the username.
        let safe = identity.replacingOccurrences(of: ":", with: "_")
        let username = "\(Int(expires.timeIntervalSince1970)):\(safe)"
        return (username, password(for: username))
    }

    public func password(for username: String) -> String {
        Data(HMAC<Insecure.SHA1>.authenticationCode(for: Data(username.utf8), using: secret)).base64EncodedString()
    }

    /// The identity a username names, if it has not expired at `now`.
    public func identity(of username: String, now: Date) -> String? {
        guard let colon = username.firstIndex(of: ":"), let expiry = Int(username[..<colon]),
              Double(expiry) > now.timeIntervalSince1970 else { return nil }
        return String(username[username.index(after: colon)...])
    }
}
