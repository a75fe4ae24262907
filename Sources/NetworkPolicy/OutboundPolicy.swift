import NIOCore
import NIOPosix

/// Why an outbound connection was not made. `reason` is for logs and the operator; what a
/// user is shown stays generic (see `OutboundPolicy`).
public struct OutboundRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    /// The name did not resolve: nothing is known about where it points yet.
    public let unresolved: Bool
    public init(_ reason: String, unresolved: Bool = false) {
        self.reason = reason
        self.unresolved = unresolved
    }
    public var description: String { reason }
}

/// Where Tally may connect on its own: destinations, ingest relays, the on_publish webhook.
/// Users name these hosts, so without a policy a URL could aim the server at its own
/// loopback services, the private network behind it or a cloud's metadata endpoint.
///
/// Every address a host resolves to is checked when the connection is made (not only when
/// the URL is saved), so DNS that answers differently later cannot slip past; the caller
/// connects to the checked address itself. Networks the operator lists in
/// `TALLY_OUTBOUND_ALLOW` are admitted even where a built-in range blocks them.
public struct OutboundPolicy: Sendable, Equatable {
    public let allowed: [IPNetwork]

    public init(allowing allowed: [IPNetwork] = []) {
        self.allowed = allowed
    }

    /// Parses `TALLY_OUTBOUND_ALLOW`: comma-separated CIDRs or addresses; empty admits none.
    public init(allowList text: String) throws(OutboundRefusal) {
        var networks: [IPNetwork] = []
        for item in text.split(separator: ",") where !item.allSatisfy(\.isWhitespace) {
            guard let network = IPNetwork(String(item)) else {
                throw OutboundRefusal("\"\(item.filter { !$0.isWhitespace })\" is not a CIDR such as 127.0.0.0/8 or fd00::/8")
            }
            networks.append(network)
        }
        self.init(allowing: networks)
    }

    /// Everything admitted: for the load generator and tests that aim at loopback on purpose.
    public static let unrestricted = OutboundPolicy(allowing: [IPNetwork("0.0.0.0/0")!, IPNetwork("::/0")!])

    /// For connections between the deployment's own nodes (relays, a program's HLS from its
    /// home), whose addresses come from their heartbeats, not from users: this policy, and
    /// the private and loopback networks nodes usually share. Link-local and metadata
    /// addresses stay refused, since no node lives there.
    public var betweenNodes: OutboundPolicy {
        OutboundPolicy(allowing: allowed + ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8",
                                            "fc00::/7", "::1/128"].map { IPNetwork($0)! })
    }

    /// Ranges that never hold a public service, each with the name a log line gives it.
    static let blocked: [(network: IPNetwork, name: String)] = [
        ("0.0.0.0/8", "this-network"), ("10.0.0.0/8", "private"), ("100.64.0.0/10", "carrier-grade NAT"),
        ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local or metadata"), ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol"), ("192.0.2.0/24", "documentation"), ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"), ("198.51.100.0/24", "documentation"), ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"), ("240.0.0.0/4", "reserved or broadcast"),
        ("::/128", "unspecified"), ("::1/128", "loopback"), ("100::/64", "discard"), ("2001:db8::/32", "documentation"),
        ("fc00::/7", "unique local"), ("fe80::/10", "link-local"), ("fec0::/10", "site-local"), ("ff00::/8", "multicast"),
    ].map { (IPNetwork($0.0)!, $0.1) }

    /// IPv6 forms that carry an IPv4 address in their last four bytes: IPv4-mapped, NAT64,
    /// IPv4-compatible. The IPv4 address inside is what the kernel (or a gateway) reaches.
    static let embeddingIPv4 = [IPNetwork("::ffff:0:0/96")!, IPNetwork("64:ff9b::/96")!, IPNetwork("::/96")!]

    /// nil when Tally may connect to `address` (4 or 16 bytes); else the kind of range it is in.
    public func refusal(for address: [UInt8]) -> String? {
        if allowed.contains(where: { $0.contains(address) }) { return nil }
        if address.count == 16, Self.embeddingIPv4.contains(where: { $0.contains(address) }), address != IPNetwork.unspecifiedIPv6,
           address != IPNetwork.loopbackIPv6 {
            return refusal(for: Array(address.suffix(4)))
        }
        return Self.blocked.first { $0.network.contains(address) }.map(\.name)
    }

    /// Names that only ever mean something inside one machine or one private network.
    static func isInternalName(_ host: String) -> Bool {
        let name = host.lowercased().trimmingSuffix(".")
        let internalSuffixes = [".localhost", ".internal", ".local", ".localdomain", ".home.arpa"]
        return name == "localhost" || name == "localhost.localdomain" || internalSuffixes.contains { name.hasSuffix($0) }
    }

    /// The addresses of `host` that Tally may connect to, resolved now; refused when there is
    /// none. A literal address is checked as it is; a name is resolved off the event loops.
    public func resolve(host: String, port: Int) async throws(OutboundRefusal) -> [SocketAddress] {
        let literal = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let found: [SocketAddress]
        do {
            found = try await NIOThreadPool.singleton.runIfActive { try Self.lookUp(literal, port: port) }
        } catch let refusal as OutboundRefusal {
            // An internal name that does not resolve here is still no public server.
            if Self.isInternalName(literal) { throw OutboundRefusal("\(host) is an internal name") }
            throw refusal
        } catch {
            throw OutboundRefusal("cannot resolve \(host): \(error)", unresolved: true)
        }
        var reasons: [String] = []
        let admitted = found.filter { address in
            guard let bytes = address.ipBytes else { return false }
            guard let reason = refusal(for: bytes) else { return true }
            reasons.append("\(address.ipAddress ?? "?") is \(reason)")
            return false
        }
        guard !admitted.isEmpty else {
            throw OutboundRefusal("\(host) resolves only to addresses Tally does not connect to (\(reasons.joined(separator: ", "))); TALLY_OUTBOUND_ALLOW admits networks")
        }
        // An internal name (`metadata.google.internal`, `x.local`) is refused even where its
        // DNS answer looks public, unless the operator admitted where it points.
        if Self.isInternalName(literal), !admitted.allSatisfy({ address in allowed.contains { $0.contains(address.ipBytes ?? []) } }) {
            throw OutboundRefusal("\(host) is an internal name")
        }
        return admitted
    }

    /// The check when a URL is saved: nil unless `host` is forbidden now. A name that does
    /// not resolve yet passes, since connecting checks again.
    public func screen(host: String) async -> OutboundRefusal? {
        do {
            _ = try await resolve(host: host, port: 1)
            return nil
        } catch {
            return error.unresolved ? nil : error
        }
    }

    /// Every address `getaddrinfo` gives for a TCP connection to `host`.
    static func lookUp(_ host: String, port: Int) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw OutboundRefusal("cannot resolve \(host): \(String(cString: gai_strerror(status)))", unresolved: true)
        }
        defer { freeaddrinfo(first) }
        var addresses: [SocketAddress] = []
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            if let raw = current.pointee.ai_addr {
                switch Int32(raw.pointee.sa_family) {
                case AF_INET:
                    let v4 = UnsafeRawPointer(raw).load(as: sockaddr_in.self)
                    addresses.append(SocketAddress(v4, host: host))
                case AF_INET6:
                    let v6 = UnsafeRawPointer(raw).load(as: sockaddr_in6.self)
                    addresses.append(SocketAddress(v6, host: host))
                default:
                    break
                }
            }
            entry = current.pointee.ai_next
        }
        return addresses
    }
}

extension IPNetwork {
    static let unspecifiedIPv6 = [UInt8](repeating: 0, count: 16)
    static let loopbackIPv6 = [UInt8](repeating: 0, count: 15) + [1]
}

extension SocketAddress {
    /// The raw address: 4 bytes for IPv4, 16 for IPv6; nil for a Unix socket.
    public var ipBytes: [UInt8]? {
        switch self {
        case .v4(let address):
            var raw = address.address.sin_addr
            return withUnsafeBytes(of: &raw) { Array($0) }
        case .v6(let address):
            var raw = address.address.sin6_addr
            return withUnsafeBytes(of: &raw) { Array($0) }
        case .unixDomainSocket:
            return nil
        }
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
