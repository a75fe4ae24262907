import FluentKit
import Foundation
import HTTPAPI
import Hummingbird
import NIOCore
import Store
import Testing

/// Media sessions belong to the credential that opened them, and each credential and each
/// address holds only so many (the hostile review's items 1, 2 and 4).
@Suite("Media sessions: who may end them, how many one may hold")
struct SessionOwnershipTests {
    static let sdp: HTTPFields = [.contentType: "application/sdp"]
    static var echoOffer: ByteBuffer { ByteBuffer(string: EchoTests.chromeOffer) }

    private func invite(_ api: APIClient, broadcast: String, host: String) async throws -> String {
        try #require(try await api.call(.post, "/api/broadcasts/\(broadcast)/invites", json: ["name": "Gina"], token: host)["token"] as? String)
    }

    @Test("another identity cannot end an echo session, even signed in")
    func echoBelongsToItsOpener() async throws {
        try await withServer { api, services in
            let host = try await api.signUp()
            let other = try await api.signUp()
            let reply = try await api.call(.post, "/api/echo", token: host.accessToken, headers: Self.sdp, body: Self.echoOffer)
            let location = try #require(reply.headers[.location])
            #expect(try await api.call(.delete, location, token: other.accessToken).status == .notFound)
            #expect(await services.webrtc.sessionCount == 1)
            #expect(try await api.call(.delete, location, token: host.accessToken).status == .ok)
        }
    }

    @Test("a guest cannot cut off the host's WHIP publishing; the host can end the guest's")
    func guestsActOnlyOnThemselves() async throws {
        try await withServer { api, _ in
            let host = try await api.signUp()
            let id = try await api.createBroadcast(host.accessToken)
            let guest = try await invite(api, broadcast: id, host: host.accessToken)
            let offer = ByteBuffer(string: WHIPTests.simulcastOffer)
            let hostLocation = try #require(try await api.call(.post, "/whip/\(id)", token: host.accessToken, headers: Self.sdp, body: offer).headers[.location])
            let guestLocation = try #require(try await api.call(.post, "/whip/\(id)", token: guest, headers: Self.sdp, body: offer).headers[.location])
            #expect(try await api.call(.delete, hostLocation, token: guest).status == .notFound)
            #expect(try await api.call(.delete, guestLocation, token: host.accessToken).status == .ok)
            #expect(try await api.call(.delete, hostLocation, token: host.accessToken).status == .ok)
        }
    }

    @Test("one invite publishing again over WHIP is the same participant, not a new one")
    func oneInviteOneWHIPParticipant() async throws {
        try await withServer { api, services in
            let host = try await api.signUp()
            let id = try await api.createBroadcast(host.accessToken)
            let guest = try await invite(api, broadcast: id, host: host.accessToken)
            var locations: Set<String> = []
            for _ in 0..<5 {
                let reply = try await api.call(.post, "/whip/\(id)", token: guest, headers: Self.sdp, body: ByteBuffer(string: WHIPTests.simulcastOffer))
                #expect(reply.status == .created)
                locations.insert(try #require(reply.headers[.location]))
            }
            #expect(locations.count == 1)
            let rows = try await Participant.query(on: services.store.db).filter(\.$broadcastID == UUID(uuidString: id)!).count()
            #expect(rows == 1)
            #expect(await services.webrtc.sessionCount == 1)
        }
    }

    @Test("one identity holds a bounded number of sessions; others are unaffected")
    func perIdentityCap() async throws {
        try await withServer(configure: { $0.maxSessionsPerIdentity = 3 }) { api, _ in
            let host = try await api.signUp()
            let id = try await api.createBroadcast(host.accessToken)
            let guest = try await invite(api, broadcast: id, host: host.accessToken)
            for _ in 0..<3 {
                #expect(try await api.call(.post, "/api/echo", token: guest, headers: Self.sdp, body: Self.echoOffer).status == .created)
            }
            let refused = try await api.call(.post, "/api/echo", token: guest, headers: Self.sdp, body: Self.echoOffer)
            #expect(refused.status == .tooManyRequests && refused.errorCode == "too_many_sessions", "\(refused.text)")
            #expect(refused.headers[.retryAfter] != nil)
            #expect(try await api.call(.post, "/api/echo", token: host.accessToken, headers: Self.sdp, body: Self.echoOffer).status == .created)
        }
    }

    @Test("an offer with more than 16 media sections is refused before any work")
    func mediaSectionCap() async throws {
        try await withServer { api, services in
            let host = try await api.signUp()
            let offer = EchoTests.chromeOffer
            guard let firstSection = offer.range(of: "m=") else { Issue.record("no m= line"); return }
            let sections = String(offer[firstSection.lowerBound...])
            let many = String(offer[..<firstSection.lowerBound]) + String(repeating: sections, count: 9)
            let reply = try await api.call(.post, "/api/echo", token: host.accessToken, headers: Self.sdp, body: ByteBuffer(string: many))
            #expect(reply.status == .badRequest && reply.errorCode == "too_many_media_sections", "\(reply.text)")
            #expect(await services.webrtc.sessionCount == 0)
        }
    }
}
