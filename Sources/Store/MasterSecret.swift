import Crypto
import Foundation

/// The server's one root secret. Every key Tally uses (stream-key encryption, token signing)
/// is derived from it with HKDF, so rotating it rotates them all.
public struct MasterSecret: Sendable {
    let keyMaterial: SymmetricKey

    public init(keyMaterial: SymmetricKey) {
        self.keyMaterial = keyMaterial
    }

    /// From `TALLY_SECRET_KEY` when set; otherwise the key file in the data directory, created
    /// once with mode 0600 so restarts keep decrypting what earlier runs stored.
    public static func load(configured: String?, dataDirectory: URL) throws -> MasterSecret {
        if let configured, !configured.isEmpty {
            guard configured.utf8.count >= 16 else { throw MasterSecretError.tooShort }
            return MasterSecret(keyMaterial: SymmetricKey(data: SHA256.hash(data: Data(configured.utf8))))
        }
        let file = dataDirectory.appendingPathComponent("secret.key")
        if let existing = try? Data(contentsOf: file) {
            guard existing.count == 32 else { throw MasterSecretError.corruptKeyFile(file.path) }
            return MasterSecret(keyMaterial: SymmetricKey(data: existing))
        }
        let fresh = SymmetricKey(size: .bits256)
        let bytes = fresh.withUnsafeBytes { Data($0) }
        guard FileManager.default.createFile(atPath: file.path, contents: bytes, attributes: [.posixPermissions: 0o600]) else {
            throw MasterSecretError.cannotWrite(file.path)
        }
        return MasterSecret(keyMaterial: fresh)
    }

    /// A 256-bit key for one purpose; different purposes never share key bytes.
    public func derivedKey(purpose: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: keyMaterial, info: Data("tally/\(purpose)".utf8), outputByteCount: 32)
    }
}

public enum MasterSecretError: Error, CustomStringConvertible {
    case tooShort
    case corruptKeyFile(String)
    case cannotWrite(String)

    public var description: String {
        switch self {
        case .tooShort: "TALLY_SECRET_KEY must be at least 16 characters"
        case .corruptKeyFile(let path): "secret key file \(path) is not 32 bytes; restore it or remove it (stored stream keys become unreadable)"
        case .cannotWrite(let path): "cannot create secret key file \(path)"
        }
    }
}
