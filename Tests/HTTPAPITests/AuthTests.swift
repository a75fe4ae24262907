import Foundation
import HTTPAPI
import Hummingbird
import Testing

@Suite("Auth: register, login, me, refresh, logout")
struct AuthTests {
    @Test("register returns a session, an HttpOnly refresh cookie, and /me knows the user")
    func registerAndMe() async throws {
        try await withServer { api, _ in
            let reply = try await api.call(.post, "/api/auth/register", json: ["email": "Ann@Example.com", "password": "correct horse", "name": "Ann"])
            #expect(reply.status == .created)
            #expect(reply["token_type"] as? String == "Bearer")
            #expect((reply["expires_in"] as? Int ?? 0) > 800)
            let cookie = try #require(reply.headers[.setCookie])
            #expect(cookie.contains("tally_refresh=") && cookie.contains("HttpOnly") && cookie.contains("Path=/api/auth"))
            let token = try #require(reply["access_token"] as? String)
            let me = try await api.call(.get, "/api/auth/me", token: token)
            #expect(me.status == .ok)
            let user = try #require(me["user"] as? [String: Any])
            #expect(user["email"] as? String == "ann@example.com")
            #expect(user["name"] as? String == "Ann")
            #expect(user["password_hash"] == nil)
        }
    }

    @Test("a second account with the same email, in any case, is a 409")
    func duplicateEmail() async throws {
        try await withServer { api, _ in
            _ = try await api.signUp(email: "dup@example.com")
            let reply = try await api.call(.post, "/api/auth/register", json: ["email": "DUP@example.com", "password": "another one", "name": "B"])
            #expect(reply.status == .conflict)
            #expect(reply.errorCode == "email_taken")
        }
    }

    @Test("bad registrations are 400s that name the field", arguments: [
        (["email": "x@example.com", "password": "long enough"], "name"),
        (["email": "not-an-email", "password": "long enough", "name": "X"], "email"),
        (["email": "x@example.com", "password": "short", "name": "X"], "password"),
        (["email": "x@example.com", "password": 12345678, "name": "X"], "password"),
        (["email": "x@example.com", "password": "long enough", "name": "   "], "name"),
    ] as [([String: any Sendable], String)])
    func badRegistration(body: [String: any Sendable], field: String) async throws {
        try await withServer { api, _ in
            let reply = try await api.call(.post, "/api/auth/register", json: body)
            #expect(reply.status == .badRequest)
            #expect(reply.errorMessage?.contains(field) == true, "message should name \(field): \(reply.text)")
        }
    }

    @Test("malformed JSON is a 400 with the error shape, never a stack trace")
    func malformedJSON() async throws {
        try await withServer { api, _ in
            let reply = try await api.call(.post, "/api/auth/login", headers: [.contentType: "application/json"], body: ByteBuffer(string: "{\"email\": "))
            #expect(reply.status == .badRequest)
            #expect(reply.errorCode == "invalid_json")
        }
    }

    @Test("login accepts the right password only, and says the same for unknown emails")
    func login() async throws {
        try await withServer { api, _ in
            let session = try await api.signUp()
            let good = try await api.call(.post, "/api/auth/login", json: ["email": session.email.uppercased(), "password": session.password])
            #expect(good.status == .ok)
            #expect(good["access_token"] is String)
            let wrong = try await api.call(.post, "/api/auth/login", json: ["email": session.email, "password": "wrong password"])
            #expect(wrong.status == .unauthorized)
            #expect(wrong.errorCode == "invalid_credentials")
            let unknown = try await api.call(.post, "/api/auth/login", json: ["email": "nobody@example.com", "password": "wrong password"])
            #expect(unknown.status == .unauthorized)
            #expect(unknown.errorMessage == wrong.errorMessage)
        }
    }

    @Test("a refresh token works once; the new one works; the cookie works too")
    func refreshRotation() async throws {
        try await withServer { api, _ in
            let session = try await api.signUp()
            let first = try await api.call(.post, "/api/auth/refresh", json: ["refresh_token": session.refreshToken])
            #expect(first.status == .ok)
            let next = try #require(first["refresh_token"] as? String)
            #expect(next != session.refreshToken)
            let viaCookie = try await api.call(.post, "/api/auth/refresh", headers: [.cookie: "tally_refresh=\(next)"])
            #expect(viaCookie.status == .ok)
            let access = try #require(viaCookie["access_token"] as? String)
            #expect(try await api.call(.get, "/api/auth/me", token: access).status == .ok)
        }
    }

    /// A refresh token that comes back after use was copied: the thief's chain and the
    /// owner's end together (the review found the rotated successor stayed valid).
    @Test("reusing a refresh token revokes its whole family, access tokens included")
    func refreshReuseRevokesTheFamily() async throws {
        try await withServer { api, _ in
            let session = try await api.signUp()
            let stolen = session.refreshToken
            let rotated = try await api.call(.post, "/api/auth/refresh", json: ["refresh_token": stolen])
            let successor = try #require(rotated["refresh_token"] as? String)
            let access = try #require(rotated["access_token"] as? String)
            #expect(try await api.call(.get, "/api/auth/me", token: access).status == .ok)
            let replay = try await api.call(.post, "/api/auth/refresh", json: ["refresh_token": stolen])
            #expect(replay.status == .unauthorized && replay.errorCode == "invalid_refresh_token")
            let next = try await api.call(.post, "/api/auth/refresh", json: ["refresh_token": successor])
            #expect(next.status == .unauthorized && next.errorCode == "invalid_refresh_token")
            let me = try await api.call(.get, "/api/auth/me", token: access)
            #expect(me.status == .unauthorized && me.errorCode == "token_revoked")
            // Another sign-in of the same account is a family of its own.
            let other = try await api.call(.post, "/api/auth/login", json: ["email": session.email, "password": session.password])
            #expect(try await api.call(.get, "/api/auth/me", token: try #require(other["access_token"] as? String)).status == .ok)
        }
    }

    @Test("a withdrawn invite stops working; only the owner withdraws it")
    func inviteRevocation() async throws {
        try await withServer { api, _ in
            let host = try await api.signUp()
            let stranger = try await api.signUp()
            let id = try await api.createBroadcast(host.accessToken)
            let invite = try await api.call(.post, "/api/broadcasts/\(id)/invites", json: ["name": "Gina"], token: host.accessToken)
            let token = try #require(invite["token"] as? String)
            let inviteID = try #require(invite["id"] as? String)
            #expect(try await api.call(.get, "/api/broadcasts/\(id)", token: token).status == .ok)
            #expect(try await api.call(.delete, "/api/broadcasts/\(id)/invites/\(inviteID)", token: stranger.accessToken).status == .forbidden)
            #expect(try await api.call(.delete, "/api/broadcasts/\(id)/invites/\(inviteID)", token: token).status == .forbidden)
            // Another host, on a broadcast of their own, cannot withdraw this broadcast's invite.
            let theirs = try await api.createBroadcast(stranger.accessToken)
            #expect(try await api.call(.delete, "/api/broadcasts/\(theirs)/invites/\(inviteID)", token: stranger.accessToken).status == .notFound)
            #expect(try await api.call(.get, "/api/broadcasts/\(id)", token: token).status == .ok)
            #expect(try await api.call(.delete, "/api/broadcasts/\(id)/invites/\(inviteID)", token: host.accessToken).status == .noContent)
            let after = try await api.call(.get, "/api/broadcasts/\(id)", token: token)
            #expect(after.status == .unauthorized && after.errorCode == "invite_revoked")
        }
    }

    @Test("logout revokes both the refresh token and the access token")
    func logout() async throws {
        try await withServer { api, _ in
            let session = try await api.signUp()
            let out = try await api.call(.post, "/api/auth/logout", json: ["refresh_token": session.refreshToken], token: session.accessToken)
            #expect(out.status == .noContent)
            #expect(out.headers[.setCookie]?.contains("Max-Age=0") == true)
            let me = try await api.call(.get, "/api/auth/me", token: session.accessToken)
            #expect(me.status == .unauthorized)
            #expect(me.errorCode == "token_revoked")
            let refresh = try await api.call(.post, "/api/auth/refresh", json: ["refresh_token": session.refreshToken])
            #expect(refresh.status == .unauthorized)
            #expect(try await api.call(.post, "/api/auth/logout").status == .unauthorized)
        }
    }

    @Test("missing, malformed and forged tokens are 401s")
    func badTokens() async throws {
        try await withServer { api, _ in
            let none = try await api.call(.get, "/api/auth/me")
            #expect(none.status == .unauthorized && none.errorCode == "unauthorized")
            let basic = try await api.call(.get, "/api/auth/me", headers: [.authorization: "Basic abc"])
            #expect(basic.status == .unauthorized && basic.errorCode == "invalid_token")
            let forged = try await api.call(.get, "/api/auth/me", token: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl")
            #expect(forged.status == .unauthorized && forged.errorCode == "invalid_token")
        }
    }

    @Test("an access token stops working when it expires")
    func expiry() async throws {
        try await withServer(configure: { $0.accessTokenLifetime = .seconds(1) }) { api, _ in
            let session = try await api.signUp()
            try await Task.sleep(for: .milliseconds(2100))
            let me = try await api.call(.get, "/api/auth/me", token: session.accessToken)
            #expect(me.status == .unauthorized)
            #expect(me.errorCode == "token_expired")
        }
    }

    @Test("login and register are rate limited with 429 and Retry-After")
    func rateLimited() async throws {
        try await withServer(configure: { $0.authAttemptsPerMinute = 3 }) { api, _ in
            for _ in 0..<3 {
                let reply = try await api.call(.post, "/api/auth/login", json: ["email": "x@example.com", "password": "wrong password"])
                #expect(reply.status == .unauthorized)
            }
            let limited = try await api.call(.post, "/api/auth/login", json: ["email": "x@example.com", "password": "wrong password"])
            #expect(limited.status == .tooManyRequests)
            #expect(limited.errorCode == "rate_limited")
            let retryAfter = try #require(limited.headers[.retryAfter].flatMap(Int.init))
            #expect((1...60).contains(retryAfter))
            for index in 0..<3 {
                _ = try await api.call(.post, "/api/auth/register", json: ["email": "r\(index)@example.com", "password": "long enough", "name": "R"])
            }
            let registerLimited = try await api.call(.post, "/api/auth/register", json: ["email": "r9@example.com", "password": "long enough", "name": "R"])
            #expect(registerLimited.status == .tooManyRequests)
        }
    }

    @Test("failed sign-ins lock only that account from that address, and never the right password elsewhere")
    func failuresArePerAccountAndAddress() async throws {
        try await withServer(configure: { $0.authAttemptsPerMinute = 100 }) { api, _ in
            let victim = try await api.signUp(email: "victim@example.com")
            let other = try await api.signUp(email: "other@example.com")
            _ = (victim, other)
            for _ in 0..<10 {
                let reply = try await api.call(.post, "/api/auth/login", json: ["email": "victim@example.com", "password": "wrong password"])
                #expect(reply.status == .unauthorized)
            }
            let locked = try await api.call(.post, "/api/auth/login", json: ["email": "victim@example.com", "password": "correct horse"])
            #expect(locked.status == .tooManyRequests && locked.errorCode == "rate_limited")
            #expect(locked.headers[.retryAfter] != nil)
            let unaffected = try await api.call(.post, "/api/auth/login", json: ["email": "other@example.com", "password": "correct horse"])
            #expect(unaffected.status == .ok)
        }
    }
}
