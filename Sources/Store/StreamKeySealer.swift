import Crypto
import Foundation

/// Encrypts stream keys at rest with AES-GCM; the database only ever holds the sealed form.
public struct StreamKeySealer: Sendable {
    private let key: SymmetricKey
    private let lookupKey: SymmetricKey

    public init(secret: MasterSecret) {
        key = secret.derivedKey(purpose: "stream-key")
        lookupKey = secret.derivedKey(purpose: "stream-key-lookup")
    }

    /// A keyed hash of a stream key, hex: equal keys give equal digests, so a publish can be
    /// looked up by it, and the digest alone gives the key away to no one.
    public func lookupDigest(_ streamKey: String) -> String {
        HMAC<SHA256>.authenticationCode(for: Data(streamKey.utf8), using: lookupKey).map { String(format: "%02x", $0) }.joined()
    }

    /// Nonce, ciphertext and tag together, base64-encoded: one column, self-contained.
    public func seal(_ plaintext: String) throws -> String {
        let box = try AES.GCM.seal(Data(plaintext.utf8), using: key)
        guard let combined = box.combined else { throw StreamKeySealerError.sealFailed }
        return combined.base64EncodedString()
    }

    public func open(_ sealed: String) throws -> String {
        guard let data = Data(base64Encoded: sealed) else { throw StreamKeySealerError.notSealed }
        let box = try AES.GCM.SealedBox(combined: data)
        let plain = try AES.GCM.open(box, using: key)
        guard let text = String(data: plain, encoding: .utf8) else { throw StreamKeySealerError.notSealed }
        return text
    }

    /// What people and logs may see of a stream key: its last four characters, and nothing
    /// at all of a key so short that four characters would give most of it away.
    public static func redact(_ streamKey: String) -> String {
        streamKey.count < 8 ? "••••" : "••••" + String(streamKey.suffix(4))
    }
}

public enum StreamKeySealerError: Error {
    case sealFailed
    case notSealed
}
