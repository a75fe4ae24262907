import Crypto
import Foundation
import Store

/// Signed, expiring HLS URLs (`?expires=UNIX&token=HMAC`): the token is HMAC-SHA256 over
/// the stream ID and the expiry, so one URL opens the playlist and every segment in it.
public struct HLSURLSigner: Sendable {
    private let key: SymmetricKey

    init(secret: MasterSecret) {
        key = secret.derivedKey(purpose: "hls-url")
    }

    func token(streamID: String, expires: Int) -> String {
        HMAC<SHA256>.authenticationCode(for: Data("\(streamID)\n\(expires)".utf8), using: key).map { String(format: "%02x", $0) }.joined()
    }

    enum Verdict: Equatable {
        case valid
        case badSignature
        case expired
    }

    func check(streamID: String, expires: String, token: String, now: Date = Date()) -> Verdict {
        guard let expiry = Int(expires), token.count == 64 else { return .badSignature }
        let expected = Array(self.token(streamID: streamID, expires: expiry).utf8)
        let given = Array(token.lowercased().utf8)
        // Compared in constant time: how much of a guess matched must not show in the timing.
        guard expected.count == given.count, zip(expected, given).reduce(UInt8(0), { $0 | ($1.0 ^ $1.1) }) == 0 else { return .badSignature }
        return Double(expiry) > now.timeIntervalSince1970 ? .valid : .expired
    }
}
