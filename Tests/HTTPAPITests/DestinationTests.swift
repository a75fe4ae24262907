import FluentKit
import Foundation
import HTTPAPI
import Hummingbird
import Store
import Testing

@Suite("Destinations: add, list, delete; stream keys sealed and redacted")
struct DestinationTests {
    static let streamKey = "abcd-efgh-ijkl-mnop-9Z7Q"

    @Test("a platform destination gets its ingest URL and shows only the key's last four characters")
    func addPlatform() async throws {
        try await withServer { api, services in
            let host = try await api.signUp()
            let id = try await api.createBroadcast(host.accessToken)
            let added = try await api.call(.post, "/api/broadcasts/\(id)/destinations", json: ["platform": "youtube", "stream_key": Self.streamKey], token: host.accessToken)
            #expect(added.status == .created)
            #expect(added["rtmp_url"] as? String == "rtmp://a.rtmp.youtube.com/live2")
            #expect(added["stream_key_hint"] as? String == "••••9Z7Q")
            #expect(added["name"] as? String == "YouTube")
            #expect(!added.text.contains(Self.streamKey))

            let stored = try #require(try await Destination.query(on: services.store.db).first())
            #expect(!stored.streamKeySealed.contains(Self.streamKey))
            #expect(try services.store.sealer.open(stored.streamKeySealed) == Self.streamKey)

            let list = try await api.call(.get, "/api/broadcasts/\(id)/destinations", token: host.accessToken)
            #expect((list["destinations"] as? [[String: Any]])?.count == 1)
            #expect(!list.text.contains(Self.streamKey))
            let broadcast = try await api.call(.get, "/api/broadcasts/\(id)", token: host.accessToken)
            #expect((broadcast["destinations"] as? [[String: Any]])?.first?["platform"] as? String == "youtube")
            #expect(!broadcast.text.contains(Self.streamKey))
        }
    }

    @Test("custom destinations need an rtmp:// or rtmps:// URL", arguments: [
        (["platform": "custom", "stream_key": "k"], HTTPResponse.Status.badRequest),
        (["platform": "custom", "rtmp_url": "http://example.com/live", "stream_key": "k"], .badRequest),
        (["platform": "custom", "rtmp_url": "rtmp://", "stream_key": "k"], .badRequest),
        (["platform": "myspace", "rtmp_url": "rtmp://example.com/live", "stream_key": "k"], .badRequest),
        (["platform": "custom", "rtmp_url": "rtmp://example.com/live", "stream_key": "has space"], .badRequest),
        (["platform": "custom", "rtmp_url": "rtmps://ingest.example.com:443/app", "stream_key": "k"], .created),
    ] as [([String: any Sendable], HTTPResponse.Status)])
    func custom(body: [String: any Sendable], expected: HTTPResponse.Status) async throws {
        try await withServer { api, _ in
            let host = try await api.signUp()
            let id = try await api.createBroadcast(host.accessToken)
            let reply = try await api.call(.post, "/api/broadcasts/\(id)/destinations", json: body, token: host.accessToken)
            #expect(reply.status == expected, "\(reply.text)")
            if expected == .created { #expect(reply["stream_key_hint"] as? String == "••••") }
        }
    }

    /// Server-side request forgery: a URL aimed at the server's own loopback, its private
    /// network or a cloud's metadata service is refused when saved, in any spelling.
    @Test("destinations cannot point inside", arguments: [
        "rtmp://169.254.169.254/live", "rtmp://10.0.0.1/live", "rtmp://[::1]:6379/live", "rtmp://localhost:22/live",
        "rtmp://0.0.0.0/live", "rtmp://2130706433/live", "rtmp://metadata.google.internal/live", "rtmps://127.0.0.1:443/app",
        "rtmp://[::ffff:10.0.0.1]/live", "rtmp://100.64.0.1/live",
    ])
    func privateAddressesAreRefused(url: String) async throws {
        try await withServer { api, _ in
            let host = try await api.signUp()
            let id = try await api.createBroadcast(host.accessToken)
            let reply = try await api.call(.post, "/api/broadcasts/\(id)/destinations", json: ["platform": "custom", "rtmp_url": url, "stream_key": "k"], token: host.accessToken)
            #expect(reply.status == .badRequest && reply.errorCode == "destination_not_allowed", "\(url): \(reply.text)")
            // Stream IDs are unique across the store, which the PostgreSQL run shares between tests.
            let streamID = "feed-\(UUID().uuidString.prefix(8).lowercased())"
            let stream = try await api.call(.post, "/api/streams", json: ["stream_id": streamID, "action": "start"], token: host.accessToken)
            #expect(stream.status == .created)
            let relay = try await api.call(.post, "/api/streams/\(streamID)/destinations", json: ["platform": "custom", "rtmp_url": url, "stream_key": "k"], token: host.accessToken)
            #expect(relay.status == .badRequest && relay.errorCode == "destination_not_allowed", "\(url): \(relay.text)")
        }
    }

    @Test("delete removes a destination; other broadcasts' and strangers' attempts fail")
    func delete() async throws {
        try await withServer { api, _ in
            let host = try await api.signUp()
            let stranger = try await api.signUp()
            let id = try await api.createBroadcast(host.accessToken)
            let other = try await api.createBroadcast(host.accessToken, title: "Other")
            let added = try await api.call(.post, "/api/broadcasts/\(id)/destinations", json: ["platform": "twitch", "stream_key": "live_123456789"], token: host.accessToken)
            let destID = try #require(added["id"] as? String)
            #expect(try await api.call(.delete, "/api/broadcasts/\(other)/destinations/\(destID)", token: host.accessToken).status == .notFound)
            #expect(try await api.call(.delete, "/api/broadcasts/\(id)/destinations/\(destID)", token: stranger.accessToken).status == .forbidden)
            #expect(try await api.call(.delete, "/api/broadcasts/\(id)/destinations/\(destID)", token: host.accessToken).status == .noContent)
            #expect(try await api.call(.delete, "/api/broadcasts/\(id)/destinations/\(destID)", token: host.accessToken).errorCode == "destination_not_found")
        }
    }

    @Test("a destination is switched off and on by its owner only, its key kept")
    func enable() async throws {
        try await withServer { api, _ in
            let host = try await api.signUp()
            let stranger = try await api.signUp()
            let id = try await api.createBroadcast(host.accessToken)
            let added = try await api.call(.post, "/api/broadcasts/\(id)/destinations", json: ["platform": "twitch", "stream_key": "live_123456789"], token: host.accessToken)
            let path = "/api/broadcasts/\(id)/destinations/\(try #require(added["id"] as? String))"
            #expect(try await api.call(.patch, path, json: ["enabled": false], token: stranger.accessToken).status == .forbidden)
            #expect(try await api.call(.patch, path, json: ["enabled": "no"], token: host.accessToken).status == .badRequest)
            let off = try await api.call(.patch, path, json: ["enabled": false], token: host.accessToken)
            #expect(off.status == .ok && off["enabled"] as? Bool == false && off["stream_key_hint"] as? String == added["stream_key_hint"] as? String)
            let listed = try await api.call(.get, "/api/broadcasts/\(id)/destinations", token: host.accessToken)
            #expect((listed["destinations"] as? [[String: Any]])?.first?["enabled"] as? Bool == false)
            #expect(try await api.call(.patch, path, json: ["enabled": true], token: host.accessToken)["enabled"] as? Bool == true)
        }
    }

    @Test("a broadcast takes at most ten destinations")
    func limit() async throws {
        try await withServer { api, _ in
            let host = try await api.signUp()
            let id = try await api.createBroadcast(host.accessToken)
            for index in 0..<10 {
                let reply = try await api.call(.post, "/api/broadcasts/\(id)/destinations", json: ["platform": "custom", "rtmp_url": "rtmp://live.example.com/live", "stream_key": "key\(index)"], token: host.accessToken)
                #expect(reply.status == .created)
            }
            let over = try await api.call(.post, "/api/broadcasts/\(id)/destinations", json: ["platform": "custom", "rtmp_url": "rtmp://live.example.com/live", "stream_key": "key10"], token: host.accessToken)
            #expect(over.status == .conflict && over.errorCode == "too_many_destinations")
        }
    }
}
