import Foundation
import HTTPTypes
import Hummingbird
import NetworkPolicy

/// Behind a reverse proxy (`TALLY_TRUSTED_PROXIES`), the client is the one the proxy names:
/// the rightmost `X-Forwarded-For` address that is not itself a trusted proxy, and the
/// scheme `X-Forwarded-Proto` says. From anyone else those headers are ignored, so nobody can
/// pick the address their rate limits count against.
struct ForwardedClientMiddleware: RouterMiddleware {
    typealias Context = AppContext
    let trusted: [IPNetwork]

    func handle(_ request: Request, context: AppContext, next: (Request, AppContext) async throws -> Response) async throws -> Response {
        var context = context
        context.clientAddress = Self.client(peer: context.peerAddress, headers: request.headers, trusted: trusted)
        if let peer = context.peerAddress, Self.isTrusted(peer, trusted) {
            if let proto = request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased(), proto == "https" || proto == "http" {
                context.forwardedProto = proto
            }
        }
        return try await next(request, context)
    }

    /// The client's address: the peer's, or through trusted proxies the one they forward for.
    static func client(peer: String?, headers: HTTPFields, trusted: [IPNetwork]) -> String? {
        guard let peer, isTrusted(peer, trusted) else { return peer }
        let chain = headers[values: HTTPField.Name("X-Forwarded-For")!].flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        return chain.reversed().first { IPAddress.bytes(of: $0) != nil && !isTrusted($0, trusted) } ?? peer
    }

    static func isTrusted(_ address: String, _ trusted: [IPNetwork]) -> Bool {
        guard let bytes = IPAddress.bytes(of: address) else { return false }
        return trusted.contains { $0.contains(bytes) }
    }
}

extension API {
    /// The scheme and authority clients reach this server by: `TALLY_PUBLIC_URL` when set,
    /// else as this request came (through a trusted proxy's scheme when there is one).
    func baseURL(_ request: Request, _ context: AppContext) -> String {
        if let publicURL = configuration.publicURL { return publicURL }
        let scheme = context.forwardedProto ?? (configuration.tlsEnabled ? "https" : "http")
        // The Host header as sent, when it is only a host and a port.
        let authority = request.head.authority.flatMap { sent in
            RedirectToHTTPSMiddleware.host(of: sent) != nil && sent.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-.:[]".contains($0)) } ? sent : nil
        } ?? "localhost:\(configuration.httpPort)"
        return "\(scheme)://\(authority)"
    }

    /// The host name clients reach this server by, without a port.
    func hostName(_ request: Request) -> String {
        if let publicURL = configuration.publicURL, let host = URL(string: publicURL)?.host { return host }
        return RedirectToHTTPSMiddleware.host(of: request.head.authority) ?? configuration.publicIP ?? "localhost"
    }
}
