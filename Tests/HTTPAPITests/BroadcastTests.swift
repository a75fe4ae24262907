import Foundation
import HTTPAPI
import Hummingbird
import Testing

@Suite("Broadcasts: CRUD, ownership, lifecycle, invites")
struct BroadcastTests {
    @Test("create, read, list and patch a broadcast")
    func crud() async throws {
        try await withServer { api, _ in
            let host = try await api.signUp()
            let created = try await api.call(.post, "/api/broadcasts", json: [
                "title": "Launch day", "description": "We ship", "scheduled_at": "2026-12-01T18:00:00Z",
                "settings": ["layout": "spotlight"],
            ], token: host.accessToken)
            #expect(created.status == .created)
            #expect(created["status"] as? String == "scheduled")
            #expect(created["scheduled_at"] as? String == "2026-12-01T18:00:00Z")
            let settings = try #require(created["settings"] as? [String: Any])
            #expect(settings["layout"] as? String == "spotlight")
            #expect(settings["resolution"] as? String == "720p30")
            #expect(settings["record"] as? Bool == true)
            let id = try #require(created["id"] as? String)

            _ = try await api.createBroadcast(host.accessToken, title: "Second")
            let list = try await api.call(.get, "/api/broadcasts", token: host.accessToken)
            let titles = (list["broadcasts"] as? [[String: Any]])?.compactMap { $0["title"] as? String }
            #expect(titles?.sorted() == ["Launch day", "Second"])

            let patched = try await api.call(.patch, "/api/broadcasts/\(id)", json: ["title": "Launch day (moved)", "settings": ["record": false]], token: host.accessToken)
            #expect(patched.status == .ok)
            #expect(patched["title"] as? String == "Launch day (moved)")
            #expect((patched["settings"] as? [String: Any])?["layout"] as? String == "spotlight")
            #expect((patched["settings"] as? [String: Any])?["record"] as? Bool == false)

            let fetched = try await api.call(.get, "/api/broadcasts/\(id)", token: host.accessToken)
            #expect(fetched["description"] as? String == "We ship")
            #expect((fetched["destinations"] as? [Any])?.isEmpty == true)

            let badLayout = try await api.call(.patch, "/api/broadcasts/\(id)", json: ["settings": ["layout": "mosaic"]], token: host.accessToken)
            #expect(badLayout.status == .badRequest)
            #expect(badLayout.errorMessage?.contains("settings.layout") == true)
            let badTitle = try await api.call(.post, "/api/broadcasts", json: ["title": String(repeating: "x", count: 201)], token: host.accessToken)
            #expect(badTitle.status == .badRequest)
        }
    }

    @Test("only the owner manages a broadcast; strangers get 403, unknown ids 404")
    func ownership() async throws {
        try await withServer { api, _ in
            let owner = try await api.signUp()
            let stranger = try await api.signUp()
            let id = try await api.createBroadcast(owner.accessToken)
            for (method, path) in [(HTTPRequest.Method.get, "/api/broadcasts/\(id)"), (.delete, "/api/broadcasts/\(id)"), (.post, "/api/broadcasts/\(id)/start")] {
                let reply = try await api.call(method, path, token: stranger.accessToken)
                #expect(reply.status == .forbidden && reply.errorCode == "not_owner", "\(method) \(path)")
            }
            let patch = try await api.call(.patch, "/api/broadcasts/\(id)", json: ["title": "mine now"], token: stranger.accessToken)
            #expect(patch.status == .forbidden)
            let list = try await api.call(.get, "/api/broadcasts", token: stranger.accessToken)
            #expect((list["broadcasts"] as? [Any])?.isEmpty == true)
            #expect(try await api.call(.get, "/api/broadcasts/\(UUID())", token: owner.accessToken).errorCode == "broadcast_not_found")
            #expect(try await api.call(.get, "/api/broadcasts/not-a-uuid", token: owner.accessToken).status == .notFound)
            #expect(try await api.call(.get, "/api/broadcasts/\(id)").status == .unauthorized)
        }
    }

    @Test("scheduled → live → ended; every other transition is a 409")
    func lifecycle() async throws {
        try await withServer { api, _ in
            let host = try await api.signUp()
            let id = try await api.createBroadcast(host.accessToken)
            let token = host.accessToken
            #expect(try await api.call(.post, "/api/broadcasts/\(id)/end", token: token).errorCode == "invalid_transition")
            let live = try await api.call(.post, "/api/broadcasts/\(id)/start", token: token)
            #expect(live.status == .ok && live["status"] as? String == "live" && live["started_at"] is String)
            #expect(try await api.call(.post, "/api/broadcasts/\(id)/start", token: token).status == .conflict)
            let deleteLive = try await api.call(.delete, "/api/broadcasts/\(id)", token: token)
            #expect(deleteLive.status == .conflict && deleteLive.errorCode == "broadcast_live")
            let ended = try await api.call(.post, "/api/broadcasts/\(id)/end", token: token)
            #expect(ended["status"] as? String == "ended" && ended["ended_at"] is String)
            #expect(try await api.call(.post, "/api/broadcasts/\(id)/end", token: token).status == .conflict)
            #expect(try await api.call(.post, "/api/broadcasts/\(id)/start", token: token).status == .conflict)
            #expect(try await api.call(.patch, "/api/broadcasts/\(id)", json: ["title": "x"], token: token).errorCode == "broadcast_ended")
            let filtered = try await api.call(.get, "/api/broadcasts?status=ended", token: token)
            #expect((filtered["broadcasts"] as? [Any])?.count == 1)
            #expect(try await api.call(.get, "/api/broadcasts?status=paused", token: token).status == .badRequest)
            #expect(try await api.call(.delete, "/api/broadcasts/\(id)", token: token).status == .noContent)
            #expect(try await api.call(.get, "/api/broadcasts/\(id)", token: token).status == .notFound)
        }
    }

    @Test("an invite admits a guest to its own broadcast, read-only")
    func invites() async throws {
        try await withServer { api, _ in
            let host = try await api.signUp()
            let id = try await api.createBroadcast(host.accessToken)
            let other = try await api.createBroadcast(host.accessToken, title: "Other")
            let invite = try await api.call(.post, "/api/broadcasts/\(id)/invites", json: ["name": "Guest Gina", "expires_in_seconds": 3600], token: host.accessToken)
            #expect(invite.status == .created)
            let guestToken = try #require(invite["token"] as? String)
            #expect((invite["url"] as? String)?.contains("/join/\(id)?invite=") == true)
            #expect(invite["expires_at"] is String)

            let seen = try await api.call(.get, "/api/broadcasts/\(id)", token: guestToken)
            #expect(seen.status == .ok && seen["title"] as? String == "Morning show")
            #expect(seen["destinations"] == nil)
            #expect(try await api.call(.get, "/api/broadcasts/\(other)", token: guestToken).errorCode == "not_invited")
            #expect(try await api.call(.get, "/api/broadcasts", token: guestToken).errorCode == "account_required")
            #expect(try await api.call(.post, "/api/broadcasts/\(id)/start", token: guestToken).status == .forbidden)
            #expect(try await api.call(.get, "/api/auth/me", token: guestToken).status == .forbidden)

            let noBody = try await api.call(.post, "/api/broadcasts/\(id)/invites", token: host.accessToken)
            #expect(noBody.status == .created)
            let tooLong = try await api.call(.post, "/api/broadcasts/\(id)/invites", json: ["expires_in_seconds": 99_999_999], token: host.accessToken)
            #expect(tooLong.status == .badRequest)
        }
    }
}
