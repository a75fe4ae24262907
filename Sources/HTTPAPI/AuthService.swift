import Crypto
import Foundation
import HummingbirdBcrypt
import JWTKit
import Logging
import NIOCore
import NIOPosix
import Registry
import Store

/// Claims of every token Tally signs. `kind` keeps an invite from ever passing as a login.
struct TokenClaims: JWTPayload {
    enum Kind: String, Codable {
        case access
        case invite
        /// A watch link: opens the watch page of one broadcast and nothing else.
        case share
    }

    var sub: SubjectClaim
    var exp: ExpirationClaim
    var iat: IssuedAtClaim
    var jti: IDClaim
    var kind: Kind
    /// The broadcast an invite admits to.
    var bid: String?
    /// The guest's display name, when the host chose one.
    var name: String?
    /// Access tokens: the sign-in they descend from through refreshes, revoked together.
    var fam: String?

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}

/// What a successful login, register or refresh returns.
struct Session: Sendable {
    var accessToken: String
    var accessExpiresAt: Date
    var refreshToken: String
    var refreshLifetime: Duration
}

/// Passwords, tokens and sessions. Refresh tokens live in the registry, by hash only, and
/// work once: each refresh hands out a new one.
final class AuthService: Sendable {
    private let keys: JWTKeyCollection
    private let operatorToken: OperatorToken
    private let registry: any Registry
    private let accessLifetime: Duration
    let refreshLifetime: Duration
    private let hashCost: UInt8
    private let logger: Logger
    /// Verified against when the email is unknown, so timing does not tell which emails exist.
    private let decoyHash: String

    init(secret: MasterSecret, registry: any Registry, configuration: ServerConfiguration, logger: Logger) async {
        self.logger = logger
        keys = JWTKeyCollection()
        operatorToken = OperatorToken(secret: secret)
        await keys.add(hmac: HMACKey(key: secret.derivedKey(purpose: "jwt")), digestAlgorithm: .sha256)
        self.registry = registry
        accessLifetime = configuration.accessTokenLifetime
        refreshLifetime = configuration.refreshTokenLifetime
        hashCost = configuration.passwordHashCost
        decoyHash = Bcrypt.hash("decoy-password", cost: configuration.passwordHashCost)
    }

    // MARK: Passwords

    /// bcrypt's own threads: a burst of sign-ins (a quarter of a second of CPU each) queues
    /// here, not on the pool that serves files and resolves destination names.
    private static let passwordPool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(1, System.coreCount / 2))
        pool.start()
        return pool
    }()

    func hashPassword(_ password: String) async throws -> String {
        let cost = hashCost
        return try await Self.passwordPool.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    func verifyPassword(_ password: String, hash: String?) async throws -> Bool {
        let target = hash ?? decoyHash
        let matches = try await Self.passwordPool.runIfActive { Bcrypt.verify(password, hash: target) }
        return matches && hash != nil
    }

    // MARK: Sessions

    /// A new session: an access token and a refresh token of `family`, the sign-in this
    /// session descends from (a new one when nil).
    func startSession(userID: UUID, family: String? = nil) async throws -> Session {
        let family = family ?? Self.randomToken(bytes: 12)
        let now = Date()
        let expires = now.addingTimeInterval(accessLifetime.seconds)
        let claims = TokenClaims(
            sub: .init(value: userID.uuidString), exp: .init(value: expires), iat: .init(value: now),
            jti: .init(value: Self.randomToken(bytes: 16)), kind: .access, bid: nil, name: nil, fam: family)
        let access = try await keys.sign(claims)
        let refresh = Self.randomToken(bytes: 32)
        try await registryCall {
            try await registry.storeRefreshToken(hash: Self.digest(refresh), userID: "\(userID.uuidString) \(family)", ttl: refreshLifetime)
        }
        return Session(accessToken: access, accessExpiresAt: expires, refreshToken: refresh, refreshLifetime: refreshLifetime)
    }

    /// Trades a refresh token for a new session of the same family; the old token stops
    /// working. A token shown a second time was copied: its whole family is revoked, the
    /// thief's successor tokens and the owner's alike, and the owner signs in again.
    func refresh(_ token: String) async throws -> (session: Session, userID: UUID) {
        let hash = Self.digest(token)
        let owner = try await registryCall { try await registry.takeRefreshToken(hash: hash) }
        guard let owner else {
            if let family = try await registryCall({ try await registry.usedRefreshTokenFamily(hash: hash) }) {
                try await registryCall { try await registry.revokeTokenFamily(family, ttl: refreshLifetime) }
                logger.warning("auth: a used refresh token came back; its sign-in is revoked", metadata: ["family": "\(family)"])
            }
            throw APIError(.unauthorized, "invalid_refresh_token", "the refresh token is unknown, used or expired; sign in again")
        }
        let parts = owner.split(separator: " ", maxSplits: 1).map(String.init)
        guard let userID = UUID(uuidString: parts[0]) else {
            throw APIError(.unauthorized, "invalid_refresh_token", "the refresh token is unknown, used or expired; sign in again")
        }
        let family = parts.count > 1 ? parts[1] : Self.randomToken(bytes: 12)
        try await registryCall { try await registry.markRefreshTokenUsed(hash: hash, family: family, ttl: refreshLifetime) }
        if try await registryCall({ try await registry.isTokenFamilyRevoked(family) }) {
            throw APIError(.unauthorized, "invalid_refresh_token", "this sign-in was revoked; sign in again")
        }
        return (try await startSession(userID: userID, family: family), userID)
    }

    /// Signs out: the refresh token, the access token and the sign-in's whole family.
    func endSession(identity: Identity?, refreshToken: String?) async throws {
        if let refreshToken {
            try await registryCall { try await registry.revokeRefreshToken(hash: Self.digest(refreshToken)) }
        }
        if case .user(_, let tokenID, let expiresAt, let family)? = identity {
            let remaining = expiresAt.timeIntervalSinceNow
            if remaining > 0 {
                try await registryCall { try await registry.revokeAccessToken(id: tokenID, ttl: .seconds(remaining + 1)) }
            }
            if let family { try await registryCall { try await registry.revokeTokenFamily(family, ttl: refreshLifetime) } }
        }
    }

    /// Revokes an invite of `broadcastID` until it would have expired anyway: its guests'
    /// requests and open studio sockets stop working. False when no live invite of that
    /// broadcast has this id, so one host cannot withdraw another's invites.
    func revokeInvite(id: String, broadcastID: UUID) async throws -> Bool {
        guard try await registryCall({ try await registry.get("invite-broadcast:\(id)") }) == broadcastID.uuidString else { return false }
        try await registryCall { try await registry.revokeAccessToken(id: id, ttl: .seconds(Double(API.maxInviteLifetime) + 60)) }
        return true
    }

    /// Whether the identity an open connection authenticated with has since been signed out
    /// or revoked.
    func isRevoked(_ identity: Identity) async throws -> Bool {
        switch identity {
        case .user(_, let tokenID, _, let family):
            if try await registryCall({ try await registry.isAccessTokenRevoked(id: tokenID) }) { return true }
            guard let family else { return false }
            return try await registryCall { try await registry.isTokenFamilyRevoked(family) }
        case .guest(_, let inviteID, _):
            return try await registryCall { try await registry.isAccessTokenRevoked(id: inviteID) }
        case .operator:
            // It lasts as long as the root secret it comes from.
            return false
        }
    }

    // MARK: Tokens

    /// The identity a bearer token proves, or an error saying why it proves none.
    func authenticate(bearer token: String) async throws -> Identity {
        if token.hasPrefix(OperatorToken.prefix) {
            guard operatorToken.matches(token) else { throw APIError(.unauthorized, "invalid_token", "the token is not one this server issued") }
            return .operator
        }
        let claims: TokenClaims
        do {
            claims = try await keys.verify(token, as: TokenClaims.self)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            throw APIError(.unauthorized, "token_expired", "the token has expired; refresh it or sign in again")
        } catch {
            throw APIError(.unauthorized, "invalid_token", "the token is not one this server issued")
        }
        switch claims.kind {
        case .access:
            guard let userID = UUID(uuidString: claims.sub.value) else { throw APIError(.unauthorized, "invalid_token", "the token names no user") }
            let identity = Identity.user(id: userID, tokenID: claims.jti.value, expiresAt: claims.exp.value, family: claims.fam)
            if try await isRevoked(identity) {
                throw APIError(.unauthorized, "token_revoked", "this session was signed out; sign in again")
            }
            return identity
        case .share:
            throw APIError(.unauthorized, "invalid_token", "a watch link opens only the watch page")
        case .invite:
            guard let broadcast = claims.bid.flatMap(UUID.init(uuidString:)) else { throw APIError(.unauthorized, "invalid_token", "the invite names no broadcast") }
            let identity = Identity.guest(broadcastID: broadcast, inviteID: claims.jti.value, name: claims.name)
            if try await isRevoked(identity) {
                throw APIError(.unauthorized, "invite_revoked", "the host withdrew this invite")
            }
            return identity
        }
    }

    func issueInvite(broadcastID: UUID, name: String?, lifetime: Duration) async throws -> (token: String, expiresAt: Date, id: String) {
        try await issueScoped(.invite, broadcastID: broadcastID, name: name, lifetime: lifetime)
    }

    /// A watch link's token for one broadcast: signed, expiring, and revocable by its id.
    func issueShare(broadcastID: UUID, lifetime: Duration) async throws -> (token: String, expiresAt: Date, id: String) {
        try await issueScoped(.share, broadcastID: broadcastID, name: nil, lifetime: lifetime)
    }

    /// A token scoped to one broadcast (an invite or a watch link). Which broadcast its id
    /// belongs to is kept for as long as it lives: what withdrawing it checks.
    private func issueScoped(_ kind: TokenClaims.Kind, broadcastID: UUID, name: String?, lifetime: Duration) async throws -> (token: String, expiresAt: Date, id: String) {
        let now = Date()
        let expires = now.addingTimeInterval(lifetime.seconds)
        let id = Self.randomToken(bytes: 12)
        let claims = TokenClaims(
            sub: .init(value: "\(kind.rawValue):\(id)"), exp: .init(value: expires), iat: .init(value: now),
            jti: .init(value: id), kind: kind, bid: broadcastID.uuidString, name: name, fam: nil)
        try await registryCall { try await registry.set("\(kind.rawValue)-broadcast:\(id)", broadcastID.uuidString, ttl: lifetime + .seconds(60)) }
        return (try await keys.sign(claims), expires, id)
    }

    /// The id of a watch link for `broadcastID` that has not expired or been withdrawn.
    func authenticateShare(_ token: String, broadcastID: UUID) async throws -> String {
        let claims: TokenClaims
        do {
            claims = try await keys.verify(token, as: TokenClaims.self)
        } catch {
            throw APIError(.unauthorized, "invalid_share", "this watch link is not valid or has expired; ask the host for a new one")
        }
        guard claims.kind == .share, claims.bid == broadcastID.uuidString else {
            throw APIError(.unauthorized, "invalid_share", "this watch link is for another broadcast")
        }
        if try await registryCall({ try await registry.isAccessTokenRevoked(id: claims.jti.value) }) {
            throw APIError(.unauthorized, "share_revoked", "the host withdrew this watch link")
        }
        return claims.jti.value
    }

    /// Withdraws a watch link of `broadcastID`; false when it has none with this id.
    func revokeShare(id: String, broadcastID: UUID) async throws -> Bool {
        guard try await registryCall({ try await registry.get("share-broadcast:\(id)") }) == broadcastID.uuidString else { return false }
        try await registryCall { try await registry.revokeAccessToken(id: id, ttl: .seconds(Double(API.maxShareLifetime) + 60)) }
        return true
    }

    // MARK: Helpers

    /// Runs a registry call, turning "registry away" into the 503 the caller should see.
    func registryCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as RegistryError {
            throw RegistryUnavailable(underlying: error)
        }
    }

    static func randomToken(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func digest(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

extension Duration {
    var seconds: TimeInterval {
        let (whole, fraction) = components
        return TimeInterval(whole) + TimeInterval(fraction) / 1e18
    }
}
