import Foundation
import Hummingbird
import NIOCore
import SFU

/// Who is calling: a signed-in user, or a guest holding an invite to one broadcast.
public enum Identity: Sendable, Equatable {
    case user(id: UUID, tokenID: String, expiresAt: Date, family: String?)
    case guest(broadcastID: UUID, inviteID: String, name: String?)
    /// Whoever runs the deployment (`tally --operator-token`): sees its nodes, owns no broadcast.
    case `operator`

    /// The credential behind the identity, as media sessions record their holder.
    var sessionKey: String {
        switch self {
        case .user(let id, _, _, _): "user:\(id.uuidString)"
        case .guest(_, let inviteID, _): Self.sessionKey(invite: inviteID)
        case .operator: "operator"
        }
    }

    static func sessionKey(invite: String) -> String { "invite:\(invite)" }
}

/// The request context of every Tally route.
public struct AppContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var identity: Identity?
    /// The client's IP address, for rate limits and logs: the peer's, or behind a trusted
    /// proxy the one it forwards for; nil in tests without a socket.
    public internal(set) var clientAddress: String?
    /// The connection's own peer (a proxy, when there is one).
    public let peerAddress: String?
    /// The scheme a trusted proxy says the client used.
    public internal(set) var forwardedProto: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        peerAddress = source.channel.remoteAddress?.ipAddress
        clientAddress = peerAddress
    }

    public var requestDecoder: JSONDecoder { TallyJSON.decoder() }
    public var responseEncoder: JSONEncoder { TallyJSON.encoder() }

    /// The caller as the holder of the media sessions it opens: only the same credential may
    /// end them, and each identity and address may hold only so many.
    func sessionOwner() throws -> SessionOwner {
        guard let key = identity?.sessionKey else { throw APIError.unauthorized }
        return SessionOwner(identity: key, address: clientAddress ?? "unknown")
    }

    /// The signed-in user, or 401; guests are refused.
    func requireUser() throws -> UUID {
        guard case .user(let id, _, _, _)? = identity else {
            if case .guest? = identity { throw APIError(.forbidden, "account_required", "guests cannot do this; sign in with an account") }
            if case .operator? = identity { throw APIError(.forbidden, "account_required", "the operator's token lists nodes; sign in with an account for this") }
            throw APIError.unauthorized
        }
        return id
    }
}
