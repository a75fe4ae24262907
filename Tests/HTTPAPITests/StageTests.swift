import FluentKit
import Foundation
import HTTPAPI
import Hummingbird
import Registry
import Store
import TallyNode
import Testing

@Suite("Stage automation: GET/PUT /api/broadcasts/{id}/stage")
struct StageTests {
    /// Participant rows as publishing or joining makes them.
    static func participant(_ services: TallyNode, broadcast: String, role: ParticipantRole, name: String) async throws -> String {
        let row = Participant(broadcastID: UUID(uuidString: broadcast)!, userID: nil, name: name, role: role)
        try await row.create(on: services.store.db)
        return row.id!.uuidString
    }

    @Test("a new studio has an empty stage in the broadcast's layout; the host arranges it and studios hear of it")
    func arrange() async throws {
        try await withServer { api, services in
            let host = try await api.signUp()
            let id = try await api.createBroadcast(host.accessToken, extra: ["settings": ["layout": "sidebar"]])
            let empty = try await api.call(.get, "/api/broadcasts/\(id)/stage", token: host.accessToken)
            #expect(empty.status == .ok && empty["layout"] as? String == "sidebar")
            #expect((empty["participants"] as? [Any])?.isEmpty == true && empty.json.keys.contains("banner"))

            let events = try await services.registry.roomEvents(room: id.uppercased())
            let alice = try await Self.participant(services, broadcast: id, role: .host, name: "Alice")
            let bob = try await Self.participant(services, broadcast: id, role: .guest, name: "Bob")
            let stage: [String: any Sendable] = ["layout": "spotlight", "participants": [bob, alice], "banner": ["text": "  Live from Lisbon  "]]
            let put = try await api.call(.put, "/api/broadcasts/\(id)/stage", json: stage, token: host.accessToken)
            #expect(put.status == .ok, "\(put.text)")
            #expect(put["participants"] as? [String] == [bob, alice])
            #expect((put["banner"] as? [String: Any])?["text"] as? String == "Live from Lisbon")

            let read = try await api.call(.get, "/api/broadcasts/\(id)/stage", token: host.accessToken)
            #expect(read["layout"] as? String == "spotlight" && read["participants"] as? [String] == [bob, alice])
            var iterator = events.makeAsyncIterator()
            let event = try #require(await iterator.next())
            #expect(event.contains(#""event":"stage-updated""#) && event.contains(bob) && event.contains("Live from Lisbon"))

            let cleared = try await api.call(.put, "/api/broadcasts/\(id)/stage", json: ["layout": "grid", "participants": [alice], "banner": NSNull()],
                                              token: host.accessToken)
            #expect(cleared.status == .ok && cleared.json["banner"] is NSNull && cleared.json["logo"] is NSNull)

            // A logo and a background come from the host's own uploads.
            let upload = try await api.call(.post, "/api/upload?name=logo.png", token: host.accessToken, headers: [.contentType: "image/png"],
                                            body: ByteBuffer(bytes: UploadTests.png))
            let url = try #require(upload["url"] as? String)
            let branded = try await api.call(.put, "/api/broadcasts/\(id)/stage", json: ["layout": "grid", "participants": [alice], "logo": url, "background": url],
                                             token: host.accessToken)
            #expect(branded.status == .ok && branded["logo"] as? String == url && branded["background"] as? String == url, "\(branded.text)")
            let stranger = try await api.signUp()
            let theirs = try await api.call(.post, "/api/upload?name=x.png", token: stranger.accessToken, headers: [.contentType: "image/png"],
                                            body: ByteBuffer(bytes: UploadTests.png))
            for bad in [try #require(theirs["url"] as? String), "/uploads/nothing.png", "https://example.com/logo.png"] {
                let refused = try await api.call(.put, "/api/broadcasts/\(id)/stage", json: ["layout": "grid", "participants": [alice], "logo": bad],
                                                 token: host.accessToken)
                #expect(refused.status == .badRequest && refused.errorCode == "unknown_upload", "\(bad)")
            }
        }
    }

    @Test("a guest reads the stage but changing it is refused; so is any stage no studio could show")
    func refusals() async throws {
        try await withServer { api, services in
            let host = try await api.signUp()
            let id = try await api.createBroadcast(host.accessToken)
            let guestToken = try #require(try await api.call(.post, "/api/broadcasts/\(id)/invites", json: ["name": "Gina"], token: host.accessToken)["token"] as? String)
            let guest = try await Self.participant(services, broadcast: id, role: .guest, name: "Gina")
            let viewer = try await Self.participant(services, broadcast: id, role: .viewer, name: "Vic")

            #expect(try await api.call(.get, "/api/broadcasts/\(id)/stage", token: guestToken).status == .ok)
            let byGuest = try await api.call(.put, "/api/broadcasts/\(id)/stage", json: ["layout": "grid", "participants": [guest]], token: guestToken)
            #expect(byGuest.status == .forbidden && byGuest.errorCode == "host_only")
            let stranger = try await api.signUp()
            #expect(try await api.call(.put, "/api/broadcasts/\(id)/stage", json: ["layout": "grid", "participants": [String]()], token: stranger.accessToken).status == .forbidden)

            func refused(_ body: [String: any Sendable]) async throws -> String? {
                let reply = try await api.call(.put, "/api/broadcasts/\(id)/stage", json: body, token: host.accessToken)
                #expect(reply.status == .badRequest, "\(reply.text)")
                return reply.errorCode
            }
            #expect(try await refused(["layout": "carousel", "participants": [String]()]) == "unknown_layout")
            #expect(try await refused(["layout": "grid", "participants": [UUID().uuidString]]) == "not_a_participant")
            #expect(try await refused(["layout": "grid", "participants": [viewer]]) == "viewer_on_stage")
            #expect(try await refused(["layout": "grid", "participants": [guest, guest]]) == "duplicate_participant")
            #expect(try await refused(["layout": "grid", "participants": [String](), "banner": ["text": String(repeating: "x", count: 201)]]) == "invalid_banner")
            #expect(try await refused(["layout": "grid", "participants": [String](), "comment": ["name": "Gina", "text": String(repeating: "x", count: 301)]]) == "invalid_comment")
            #expect(try await refused(["layout": "grid", "participants": [String](), "comment": ["name": " ", "text": "hello"]]) == "invalid_comment")
            let commented = try await api.call(.put, "/api/broadcasts/\(id)/stage", json: ["layout": "grid", "participants": [String](),
                                                                                           "comment": ["name": "Gina", "text": "Hello from the chat"]],
                                               token: host.accessToken)
            #expect(commented.status == .ok)
            let shown = try await api.call(.get, "/api/broadcasts/\(id)/stage", token: host.accessToken)
            #expect((shown["comment"] as? [String: Any])?["text"] as? String == "Hello from the chat")
            #expect(try await refused(["layout": "grid"]) == "invalid_json")
            var many: [String] = []
            for index in 0..<11 { many.append(try await Self.participant(services, broadcast: id, role: .guest, name: "G\(index)")) }
            #expect(try await refused(["layout": "grid", "participants": many]) == "stage_full")
            // Nothing refused was kept.
            let stage = try await api.call(.get, "/api/broadcasts/\(id)/stage", token: host.accessToken)
            #expect(stage["layout"] as? String == "grid" && (stage["participants"] as? [Any])?.isEmpty == true)

            #expect(try await api.call(.post, "/api/broadcasts/\(id)/start", token: host.accessToken).status == .ok)
            #expect(try await api.call(.post, "/api/broadcasts/\(id)/end", token: host.accessToken).status == .ok)
            let ended = try await api.call(.put, "/api/broadcasts/\(id)/stage", json: ["layout": "grid", "participants": [guest]], token: host.accessToken)
            #expect(ended.status == .conflict && ended.errorCode == "broadcast_ended")
        }
    }
}
