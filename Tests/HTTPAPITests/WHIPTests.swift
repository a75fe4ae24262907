import FluentKit
import Foundation
import HTTPAPI
import Hummingbird
import NIOCore
import Store
import Testing

@Suite("WHIP and WHEP endpoints")
struct WHIPTests {
    static let simulcastOffer = try! String(
        contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("SDPTests/Fixtures/chrome-simulcast-sendonly.sdp"), encoding: .utf8)
    static let sdp: HTTPFields = [.contentType: "application/sdp"]

    @Test("the owner publishes as the host: 201, a participant Location, a recvonly answer with the rids")
    func ownerPublishes() async throws {
        try await withServer { api, services in
            let host = try await api.signUp()
            let id = try await api.createBroadcast(host.accessToken)
            let reply = try await api.call(.post, "/whip/\(id)", token: host.accessToken, headers: Self.sdp, body: ByteBuffer(string: Self.simulcastOffer))
            #expect(reply.status == .created, "\(reply.text)")
            let location = try #require(reply.headers[.location])
            #expect(location.hasPrefix("/whip/\(id)/"))
            #expect(reply.text.contains("a=recvonly") && reply.text.contains("a=simulcast:recv h;m;l"))
            let participant = try #require(UUID(uuidString: String(location.split(separator: "/").last!)))
            let row = try #require(try await Participant.find(participant, on: services.store.db))
            #expect(row.role == "host" && row.name == "Host")
            #expect(try await api.call(.delete, location, token: host.accessToken).status == .ok)
            #expect(try await api.call(.delete, location, token: host.accessToken).status == .notFound)
        }
    }

    @Test("an invited guest publishes as a guest; strangers, anonymous callers and ended broadcasts are refused")
    func access() async throws {
        try await withServer { api, services in
            let host = try await api.signUp()
            let stranger = try await api.signUp()
            let id = try await api.createBroadcast(host.accessToken)
            let invite = try await api.call(.post, "/api/broadcasts/\(id)/invites", json: ["name": "Gina"], token: host.accessToken)
            let guestToken = try #require(invite["token"] as? String)
            let body = ByteBuffer(string: Self.simulcastOffer)
            let guest = try await api.call(.post, "/whip/\(id)", token: guestToken, headers: Self.sdp, body: body)
            #expect(guest.status == .created)
            let participant = try #require(UUID(uuidString: String(guest.headers[.location]!.split(separator: "/").last!)))
            #expect(try await Participant.find(participant, on: services.store.db)?.role == "guest")
            #expect(try await Participant.find(participant, on: services.store.db)?.name == "Gina")
            #expect(try await api.call(.post, "/whip/\(id)", token: stranger.accessToken, headers: Self.sdp, body: body).status == .forbidden)
            #expect(try await api.call(.post, "/whip/\(id)", headers: Self.sdp, body: body).status == .unauthorized)
            #expect(try await api.call(.post, "/whip/\(UUID())", token: host.accessToken, headers: Self.sdp, body: body).status == .notFound)
            _ = try await api.call(.post, "/api/broadcasts/\(id)/start", token: host.accessToken)
            _ = try await api.call(.post, "/api/broadcasts/\(id)/end", token: host.accessToken)
            let ended = try await api.call(.post, "/whip/\(id)", token: host.accessToken, headers: Self.sdp, body: body)
            #expect(ended.status == .conflict && ended.errorCode == "broadcast_ended")
        }
    }

    @Test("playing someone who is not publishing is a 404 that says so")
    func notPublishing() async throws {
        try await withServer { api, _ in
            let host = try await api.signUp()
            let id = try await api.createBroadcast(host.accessToken)
            let reply = try await api.call(.post, "/whep/\(id)/\(UUID())", token: host.accessToken, headers: Self.sdp, body: ByteBuffer(string: Self.simulcastOffer))
            #expect(reply.status == .notFound && reply.errorCode == "not_publishing")
        }
    }
}
