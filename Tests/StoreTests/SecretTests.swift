import Crypto
import Foundation
import Store
import Testing

@Suite("Secrets: master key and stream-key sealing")
struct SecretTests {
    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tally-secret-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test("a generated key file is 0600 and the same key comes back on the next start")
    func generatedKey() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = try MasterSecret.load(configured: nil, dataDirectory: directory)
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent("secret.key").path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let second = try MasterSecret.load(configured: nil, dataDirectory: directory)
        let sealed = try StreamKeySealer(secret: first).seal("live_abc123")
        #expect(try StreamKeySealer(secret: second).open(sealed) == "live_abc123")
    }

    @Test("a configured key wins, and is refused when too short")
    func configuredKey() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let secret = try MasterSecret.load(configured: "a long enough secret", dataDirectory: directory)
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("secret.key").path))
        let other = try MasterSecret.load(configured: "another long secret", dataDirectory: directory)
        let sealed = try StreamKeySealer(secret: secret).seal("key")
        #expect(throws: (any Error).self) { try StreamKeySealer(secret: other).open(sealed) }
        #expect(throws: MasterSecretError.self) { try MasterSecret.load(configured: "short", dataDirectory: directory) }
    }

    @Test("sealing hides the key, differs every time, and detects tampering")
    func sealing() throws {
        let sealer = StreamKeySealer(secret: MasterSecret(keyMaterial: SymmetricKey(size: .bits256)))
        let key = "abcd-efgh-ijkl-mnop-qrst"
        let one = try sealer.seal(key)
        let two = try sealer.seal(key)
        #expect(one != two)
        #expect(!one.contains(key) && !(Data(base64Encoded: one).map { String(decoding: $0, as: UTF8.self).contains("abcd") } ?? true))
        #expect(try sealer.open(one) == key)
        var tampered = Array(Data(base64Encoded: one)!)
        tampered[tampered.count - 1] ^= 1
        #expect(throws: (any Error).self) { try sealer.open(Data(tampered).base64EncodedString()) }
    }

    @Test("redaction shows the last four characters of a long key and nothing of a short one", arguments: [
        ("abcd-efgh-ijkl-mnop-9Z7Q", "••••9Z7Q"), ("live_12345678", "••••5678"), ("short", "••••"), ("", "••••"),
    ])
    func redaction(key: String, shown: String) {
        #expect(StreamKeySealer.redact(key) == shown)
    }

    @Test("derived keys differ by purpose")
    func derivation() {
        let secret = MasterSecret(keyMaterial: SymmetricKey(size: .bits256))
        #expect(secret.derivedKey(purpose: "a") != secret.derivedKey(purpose: "b"))
        #expect(secret.derivedKey(purpose: "a") == secret.derivedKey(purpose: "a"))
    }
}
