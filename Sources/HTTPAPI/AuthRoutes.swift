import FluentKit
import Foundation
import Hummingbird
import Store

struct RegisterRequest: Decodable {
    var email: String
    var password: String
    var name: String
}

struct LoginRequest: Decodable {
    var email: String
    var password: String
}

struct RefreshRequest: Decodable {
    var refreshToken: String?
}

struct UserResponse: APIResponse {
    var id: UUID
    var email: String
    var name: String
    var avatarUrl: String?
    var subscriptionTier: String
    var createdAt: Date?

    init(_ user: User) throws {
        id = try user.requireID()
        email = user.email
        name = user.name
        avatarUrl = user.avatarURL
        subscriptionTier = user.subscriptionTier
        createdAt = user.createdAt
    }
}

struct SessionResponse: APIResponse {
    var user: UserResponse
    var accessToken: String
    var tokenType = "Bearer"
    var expiresIn: Int
    var refreshToken: String
}

struct MeResponse: APIResponse {
    var user: UserResponse
}

extension API {
    static let refreshCookie = "tally_refresh"

    func addAuthRoutes(to router: Router<AppContext>) {
        let group = router.group("api/auth")
        group.post("register") { request, context in try await register(request, context) }
        group.post("login") { request, context in try await login(request, context) }
        group.post("refresh") { request, context in try await refresh(request, context) }
        group.get("me") { _, context in
            let userID = try context.requireUser()
            guard let user = try await User.find(userID, on: store.db) else { throw APIError.unauthorized }
            return MeResponse(user: try UserResponse(user))
        }
        group.post("logout") { request, context in try await logout(request, context) }
    }

    private func register(_ request: Request, _ context: AppContext) async throws -> EditedResponse<SessionResponse> {
        try await enforceRateLimit("register:\(context.clientAddress ?? "unknown")")
        let body = try await request.decodeJSON(RegisterRequest.self, context: context)
        let email = try Self.normalizedEmail(body.email)
        guard (8...128).contains(body.password.count) else {
            throw APIError(.badRequest, "invalid_field", "`password` must be 8 to 128 characters")
        }
        let name = try Validate.text(body.name, field: "name", max: 100)
        if try await User.query(on: store.db).filter(\.$email == email).first() != nil {
            throw APIError(.conflict, "email_taken", "an account with this email already exists")
        }
        let user = User(email: email, passwordHash: try await auth.hashPassword(body.password), name: name)
        do {
            try await user.create(on: store.db)
        } catch where error.isConstraintFailure {
            throw APIError(.conflict, "email_taken", "an account with this email already exists")
        }
        logger.info("user registered", metadata: ["user": "\(user.loggedID)"])
        return try await sessionResponse(for: user, status: .created)
    }

    /// Failed logins are limited per account and address together, and per account only
    /// for addresses that have already failed it: guessing from anywhere is bounded, and
    /// nobody can lock the owner out by failing from elsewhere.
    private func login(_ request: Request, _ context: AppContext) async throws -> EditedResponse<SessionResponse> {
        let address = context.clientAddress ?? "unknown"
        try await enforceRateLimit("login:\(address)")
        let body = try await request.decodeJSON(LoginRequest.self, context: context)
        let email = body.email.trimmingCharacters(in: .whitespaces).lowercased()
        let account = "login-failures:\(AuthService.digest(email))"
        let pair = "\(account):\(address)"
        let (pairFailures, accountFailures) = try await auth.registryCall {
            (try await registry.attempts(pair), try await registry.attempts(account))
        }
        if pairFailures >= Self.failuresPerAccountAndAddress || (pairFailures > 0 && accountFailures >= Self.failuresPerAccount) {
            let seconds = Int(Self.failureWindow.seconds)
            throw APIError(.tooManyRequests, "rate_limited", "too many failed sign-ins for this account from here; try again later",
                           headers: [.retryAfter: String(seconds)])
        }
        let user = try await User.query(on: store.db).filter(\.$email == email).first()
        guard try await auth.verifyPassword(body.password, hash: user?.passwordHash), let user else {
            try await auth.registryCall {
                try await registry.countAttempt(pair, window: Self.failureWindow)
                try await registry.countAttempt(account, window: Self.failureWindow)
            }
            throw APIError(.unauthorized, "invalid_credentials", "the email or password is wrong")
        }
        return try await sessionResponse(for: user, status: .ok)
    }

    /// Failed sign-ins one address may make for one account in `failureWindow`.
    static let failuresPerAccountAndAddress = 10
    /// Failed sign-ins for one account, past which only addresses that have not failed it yet may try.
    static let failuresPerAccount = 100
    static let failureWindow: Duration = .seconds(15 * 60)

    private func refresh(_ request: Request, _ context: AppContext) async throws -> EditedResponse<SessionResponse> {
        let token = try await refreshToken(from: request, context: context)
        guard let token else {
            throw APIError(.unauthorized, "invalid_refresh_token", "send refresh_token in the body or the tally_refresh cookie")
        }
        let (session, userID) = try await auth.refresh(token)
        guard let user = try await User.find(userID, on: store.db) else {
            throw APIError(.unauthorized, "invalid_refresh_token", "the account no longer exists")
        }
        return try respond(session, user: user, status: .ok)
    }

    private func logout(_ request: Request, _ context: AppContext) async throws -> Response {
        let token = try await refreshToken(from: request, context: context)
        guard context.identity != nil || token != nil else { throw APIError.unauthorized }
        try await auth.endSession(identity: context.identity, refreshToken: token)
        var response = Response(status: .noContent)
        response.setCookie(Cookie(name: Self.refreshCookie, value: "", maxAge: 0, path: "/api/auth", secure: configuration.tlsEnabled, httpOnly: true, sameSite: .strict))
        return response
    }

    /// From the JSON body (native clients) or the HttpOnly cookie (the browser studio).
    private func refreshToken(from request: Request, context: AppContext) async throws -> String? {
        if let token = try await request.decodeOptionalJSON(RefreshRequest.self, context: context)?.refreshToken, !token.isEmpty {
            return token
        }
        return request.cookies[Self.refreshCookie]?.value
    }

    private func sessionResponse(for user: User, status: HTTPResponse.Status) async throws -> EditedResponse<SessionResponse> {
        try respond(await auth.startSession(userID: user.requireID()), user: user, status: status)
    }

    private func respond(_ session: Session, user: User, status: HTTPResponse.Status) throws -> EditedResponse<SessionResponse> {
        let cookie = Cookie(
            name: Self.refreshCookie, value: session.refreshToken, maxAge: Int(session.refreshLifetime.seconds),
            path: "/api/auth", secure: configuration.tlsEnabled, httpOnly: true, sameSite: .strict)
        let body = SessionResponse(
            user: try UserResponse(user), accessToken: session.accessToken,
            expiresIn: max(0, Int(session.accessExpiresAt.timeIntervalSinceNow.rounded())), refreshToken: session.refreshToken)
        return EditedResponse(status: status, headers: [.setCookie: cookie.description], response: body)
    }

    static func normalizedEmail(_ raw: String) throws -> String {
        let email = raw.trimmingCharacters(in: .whitespaces).lowercased()
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard email.count <= 254, parts.count == 2, !parts[0].isEmpty, parts[1].contains("."),
              !parts[1].hasPrefix("."), !parts[1].hasSuffix("."),
              !email.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control }) else {
            throw APIError(.badRequest, "invalid_field", "`email` must be an email address")
        }
        return email
    }
}
