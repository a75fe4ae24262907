/// An IPv4 or IPv6 network in CIDR form (`10.0.0.0/8`, `fd00::/8`); a bare address is a
/// network of one.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6, with the host bits cleared.
    public let base: [UInt8]
    public let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.filter { !$0.isWhitespace }.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress.bytes(of: String(parts[0])) else { return nil }
        let bits = address.count * 8
        var length = bits
        if parts.count == 2 {
            guard let given = Int(parts[1]), (0...bits).contains(given), parts[1].allSatisfy(\.isASCII) else { return nil }
            length = given
        }
        self.init(address: address, prefixLength: length)
    }

    init(address: [UInt8], prefixLength: Int) {
        self.prefixLength = prefixLength
        base = address.enumerated().map { index, byte in
            let kept = max(0, min(8, prefixLength - index * 8))
            return kept == 0 ? 0 : byte & UInt8(truncatingIfNeeded: 0xFF << (8 - kept))
        }
    }

    /// Whether `address` (4 or 16 bytes) lies in this network; an IPv4 address never lies in
    /// an IPv6 network nor the reverse.
    public func contains(_ address: [UInt8]) -> Bool {
        guard address.count == base.count else { return false }
        var remaining = prefixLength
        for (byte, baseByte) in zip(address, base) where remaining > 0 {
            let kept = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - kept))
            if byte & mask != baseByte { return false }
            remaining -= kept
        }
        return true
    }

    public var description: String { "\(IPAddress.text(of: base))/\(prefixLength)" }
}

/// Text ⇄ bytes for IP addresses, in the strict forms `inet_pton` accepts.
public enum IPAddress {
    public static func bytes(of text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    public static func text(of bytes: [UInt8]) -> String {
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let ok = bytes.withUnsafeBytes { raw in inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil }
        guard ok else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
