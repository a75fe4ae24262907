import Foundation
import Hummingbird
import HTTPTypes
import TURN

/// The TURN servers a client is told about, with credentials for its identity: Tally's own
/// (UDP and TCP on the TURN port; TLS on the TURNS port, or on the HTTPS port itself for
/// clients that may only reach that), or the operator's coturn (`TALLY_TURN_URLS` with its
/// `use-auth-secret`, `TALLY_TURN_SECRET`).
struct ICEServerDirectory: Sendable {
    struct Server: Encodable, Sendable {
        var urls: [String]
        var username: String
        var credential: String
    }

    let credentials: TURNCredentials
    /// The operator's URLs; empty: Tally's own TURN.
    let externalURLs: [String]
    let turnPort: Int
    /// Where TURN over TLS is: a port of its own, the HTTPS port (known once it listens), or
    /// none (no certificate).
    let turnsPort: BoundPort?
    let lifetime: TimeInterval

    /// `host`: the name the client reached this server by (a certificate names it). The
    /// credential names its holder and address together: TURN's per-identity cap then
    /// bounds one device, while a studio whose guests share one invite link each get theirs.
    func servers(identity: String, address: String?, host: String, now: Date = Date()) -> [Server] {
        let issued = credentials.issue(identity: "\(identity)@\(address ?? "unknown")", expires: now.addingTimeInterval(lifetime))
        var urls = externalURLs
        if urls.isEmpty {
            let shown = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
            urls = ["turn:\(shown):\(turnPort)?transport=udp", "turn:\(shown):\(turnPort)?transport=tcp"]
            if let turnsPort { urls.append("turns:\(shown):\(turnsPort.value)?transport=tcp") }
        }
        return [Server(urls: urls, username: issued.username, credential: issued.password)]
    }

    /// RFC 9725 §4.6: `Link` headers naming the same servers, for WHIP and WHEP clients.
    func linkHeaders(identity: String, address: String?, host: String) -> [String] {
        servers(identity: identity, address: address, host: host).flatMap { server in
            server.urls.map { url in
                "<\(url)>; rel=\"ice-server\"; username=\"\(server.username)\"; credential=\"\(server.credential)\"; credential-type=\"password\""
            }
        }
    }
}

struct ICEServersResponse: APIResponse {
    var iceServers: [ICEServerDirectory.Server]
}

extension API {
    func addICEServerRoutes(to router: Router<AppContext>) {
        router.get("api/ice-servers") { request, context -> ICEServersResponse in
            guard let identity = context.identity else { throw APIError.unauthorized }
            // TURN credentials are for those who send or play media, which the operator does not.
            guard identity != .operator else { throw APIError(.forbidden, "account_required", "the operator's token gets no TURN credentials") }
            return ICEServersResponse(iceServers: iceServers.servers(identity: identity.sessionKey, address: context.clientAddress, host: turnHost(request)))
        }
    }

    /// The host name clients reach TURN by: the public URL's, else the one this request used.
    func turnHost(_ request: Request) -> String {
        let host = hostName(request)
        return host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
    }

    /// An SDP answer, with the ICE servers for its holder as `Link` headers; `location` is a
    /// path, made absolute with `TALLY_PUBLIC_URL` when that is set.
    func sdpResponse(_ answer: String, location: String, request: Request, context: AppContext, identity: String) -> Response {
        let location = configuration.publicURL.map { $0 + location } ?? location
        var headers: HTTPFields = [.contentType: "application/sdp", .location: location, .accessControlExposeHeaders: "Location, Link"]
        for link in iceServers.linkHeaders(identity: identity, address: context.clientAddress, host: turnHost(request)) {
            headers.append(HTTPField(name: .link, value: link))
        }
        return Response(status: .created, headers: headers, body: .init(byteBuffer: ByteBuffer(string: answer)))
    }
}

extension HTTPField.Name {
    static let link = HTTPField.Name("Link")!
}
