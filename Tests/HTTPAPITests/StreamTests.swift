import FluentKit
import Foundation
import Hummingbird
import Store
import Testing

@testable import HTTPAPI

@Suite("Ingest streams: the stream API and signed HLS URLs")
struct StreamTests {
    @Test("start creates a stream and shows its key once; others cannot take its ID; stop and delete")
    func lifecycle() async throws {
        try await withServer { api, services in
            let owner = try await api.signUp()
            let stranger = try await api.signUp()
            let created = try await api.call(.post, "/api/streams", json: ["stream_id": "morning-show", "action": "start"], token: owner.accessToken)
            #expect(created.status == .created, "\(created.text)")
            let key = try #require(created["stream_key"] as? String)
            #expect(key.count >= 24 && created["status"] as? String == "starting")
            let ingest = try #require(created["ingest"] as? [String: Any])
            #expect((ingest["rtmp_publish_url"] as? String)?.hasSuffix("/live/\(key)") == true)
            let stored = try #require(try await IngestStreamRecord.query(on: services.store.db).filter(\.$streamID == "morning-show").first())
            #expect(!stored.streamKeySealed.contains(key) && stored.streamKeyDigest == services.store.sealer.lookupDigest(key))

            let again = try await api.call(.post, "/api/streams", json: ["stream_id": "morning-show", "action": "start"], token: owner.accessToken)
            #expect(again.status == .ok && again["stream_key"] == nil && !again.text.contains(key))
            let taken = try await api.call(.post, "/api/streams", json: ["stream_id": "morning-show", "action": "start"], token: stranger.accessToken)
            #expect(taken.status == .conflict && taken.errorCode == "stream_id_taken")
            #expect(try await api.call(.get, "/api/streams/morning-show", token: stranger.accessToken).status == .forbidden)
            #expect(try await api.call(.get, "/api/streams/nope", token: owner.accessToken).errorCode == "stream_not_found")
            #expect(try await api.call(.get, "/api/streams/morning-show").status == .unauthorized)

            let stopped = try await api.call(.post, "/api/streams", json: ["stream_id": "morning-show", "action": "stop"], token: owner.accessToken)
            #expect(stopped.status == .ok && stopped["status"] as? String == "stopped")
            let list = try await api.call(.get, "/api/streams", token: owner.accessToken)
            #expect((list["streams"] as? [[String: Any]])?.first?["status"] as? String == "stopped")
            #expect((try await api.call(.get, "/api/streams", token: stranger.accessToken)["streams"] as? [Any])?.isEmpty == true)
            let restarted = try await api.call(.post, "/api/streams", json: ["stream_id": "morning-show", "action": "start"], token: owner.accessToken)
            #expect(restarted["status"] as? String == "starting")

            #expect(try await api.call(.delete, "/api/streams/morning-show", token: stranger.accessToken).status == .forbidden)
            #expect(try await api.call(.delete, "/api/streams/morning-show", token: owner.accessToken).status == .noContent)
            #expect(try await api.call(.get, "/api/streams/morning-show", token: owner.accessToken).status == .notFound)
        }
    }

    @Test("a regenerated key is shown once, replaces the old one, and only the owner gets one")
    func regenerateKey() async throws {
        try await withServer { api, _ in
            let owner = try await api.signUp()
            let stranger = try await api.signUp()
            let created = try await api.call(.post, "/api/streams", json: ["stream_id": "rekey", "action": "start"], token: owner.accessToken)
            let first = try #require(created["stream_key"] as? String)
            #expect(try await api.call(.post, "/api/streams/rekey/key", token: stranger.accessToken).status == .forbidden)
            let renewed = try await api.call(.post, "/api/streams/rekey/key", token: owner.accessToken)
            let second = try #require(renewed["stream_key"] as? String)
            #expect(renewed.status == .ok && second != first && second.hasPrefix("live_"))
            #expect(renewed["stream_key_hint"] as? String == "••••" + String(second.suffix(4)))
            #expect(((renewed["ingest"] as? [String: Any])?["rtmp_publish_url"] as? String)?.hasSuffix("/\(second)") == true)
            let shown = try await api.call(.get, "/api/streams/rekey", token: owner.accessToken)
            #expect(shown["stream_key"] == nil && shown["stream_key_hint"] as? String == renewed["stream_key_hint"] as? String)
            #expect(shown["bitrate_bps"] as? Int == 0)
        }
    }

    @Test("stream IDs and actions are checked", arguments: [
        (["stream_id": "", "action": "start"], "invalid_field"),
        (["stream_id": "has space", "action": "start"], "invalid_field"),
        (["stream_id": "-leading", "action": "start"], "invalid_field"),
        (["stream_id": String(repeating: "a", count: 65), "action": "start"], "invalid_field"),
        (["stream_id": "6F9619FF-8B86-D011-B42D-00CF4FC964FF", "action": "start"], "invalid_field"),
        (["stream_id": "fine", "action": "pause"], "invalid_field"),
        (["stream_id": "fine"], "invalid_json"),
    ] as [([String: any Sendable], String)])
    func validation(body: [String: any Sendable], code: String) async throws {
        try await withServer { api, _ in
            let owner = try await api.signUp()
            let reply = try await api.call(.post, "/api/streams", json: body, token: owner.accessToken)
            #expect(reply.status == .badRequest && reply.errorCode == code, "\(reply.text)")
        }
    }

    @Test("HLS plays through a signed URL: none is 401, a forged one 403, an expired one 410")
    func signedURLs() async throws {
        try await withServer { api, services in
            let owner = try await api.signUp()
            _ = try await api.call(.post, "/api/streams", json: ["stream_id": "show", "action": "start"], token: owner.accessToken)
            #expect(try await api.call(.get, "/hls/unknown/index.m3u8").errorCode == "not_live")
            let directory = services.ingest.hlsRoot.appendingPathComponent("show")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.000,\nsegment0.ts\n".write(to: directory.appendingPathComponent("index.m3u8"), atomically: true, encoding: .utf8)
            try Data([0x47, 0, 0, 0]).write(to: directory.appendingPathComponent("segment0.ts"))

            let meta = try await api.call(.get, "/api/hls/show", token: owner.accessToken)
            #expect(meta.status == .ok && meta["message"] as? String == "HLS stream metadata" && meta["stream_id"] as? String == "show")
            let data = try #require(meta["data"] as? [String: Any])
            let streamURL = try #require(data["stream_url"] as? String)
            let query = try #require(streamURL.split(separator: "?").last.map(String.init))
            #expect(data["is_live"] as? Bool == false && (data["hls_url"] as? String)?.hasSuffix("/hls/show/index.m3u8") == true)

            #expect(try await api.call(.get, "/hls/show/index.m3u8").errorCode == "signature_required")
            let playlist = try await api.call(.get, "/hls/show/index.m3u8?\(query)")
            #expect(playlist.status == .ok && playlist.text.contains("segment0.ts?\(query)"))
            #expect(playlist.headers[.cacheControl] == "no-cache" && playlist.headers[.accessControlAllowOrigin] == "*")
            #expect(try await api.call(.get, "/hls/show/segment0.ts?\(query)").status == .ok)
            let forged = query.replacingOccurrences(of: "token=", with: "token=f")
            #expect(try await api.call(.get, "/hls/show/segment0.ts?\(forged.dropLast())").errorCode == "bad_signature")
            let past = Int(Date().timeIntervalSince1970) - 10
            let expired = "expires=\(past)&token=\(services.hlsSigner.token(streamID: "show", expires: past))"
            let gone = try await api.call(.get, "/hls/show/index.m3u8?\(expired)")
            #expect(gone.status == .gone && gone.errorCode == "url_expired")
            // A signature for one stream opens no other.
            _ = try await api.call(.post, "/api/streams", json: ["stream_id": "other", "action": "start"], token: owner.accessToken)
            #expect(try await api.call(.get, "/hls/other/index.m3u8?\(query)").errorCode == "bad_signature")
            #expect(try await api.call(.get, "/api/hls/show?ttl=5", token: owner.accessToken).status == .badRequest)

            _ = try await api.call(.post, "/api/streams", json: ["stream_id": "show", "action": "start", "public_hls": true], token: owner.accessToken)
            #expect(try await api.call(.get, "/hls/show/index.m3u8").status == .ok)
            let debug = try await api.call(.get, "/api/debug/show", token: owner.accessToken)
            #expect(debug.status == .ok && debug["playlist"] as? String != nil && (debug["segments"] as? [Any])?.count == 1)
        }
    }

    @Test("fMP4 HLS: the signature reaches the EXT-X-MAP initialization section too, and each file has its media type")
    func fragmentedHLS() async throws {
        try await withServer { api, services in
            let owner = try await api.signUp()
            _ = try await api.call(.post, "/api/streams", json: ["stream_id": "av1show", "action": "start"], token: owner.accessToken)
            let directory = services.ingest.hlsRoot.appendingPathComponent("av1show")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init3.mp4\"\n#EXTINF:2.000,\nsegment3.m4s\n"
                .write(to: directory.appendingPathComponent("index.m3u8"), atomically: true, encoding: .utf8)
            try Data([0, 0, 0, 8, 0x66, 0x74, 0x79, 0x70]).write(to: directory.appendingPathComponent("init3.mp4"))
            try Data([0, 0, 0, 8, 0x73, 0x74, 0x79, 0x70]).write(to: directory.appendingPathComponent("segment3.m4s"))
            let meta = try await api.call(.get, "/api/hls/av1show", token: owner.accessToken)
            let streamURL = try #require((meta["data"] as? [String: Any])?["stream_url"] as? String)
            let query = try #require(streamURL.split(separator: "?").last.map(String.init))
            let playlist = try await api.call(.get, "/hls/av1show/index.m3u8?\(query)")
            #expect(playlist.text.contains("#EXT-X-MAP:URI=\"init3.mp4?\(query)\"\n") && playlist.text.contains("\nsegment3.m4s?\(query)\n"), "\(playlist.text)")
            let initialization = try await api.call(.get, "/hls/av1show/init3.mp4?\(query)")
            #expect(initialization.status == .ok && initialization.headers[.contentType] == "video/mp4")
            let segment = try await api.call(.get, "/hls/av1show/segment3.m4s?\(query)")
            #expect(segment.status == .ok && segment.headers[.contentType] == "video/iso.segment" && segment.headers[.cacheControl] == "public, max-age=3600")
            #expect(try await api.call(.get, "/hls/av1show/init3.mp4").errorCode == "signature_required")
            for name in ["init.mp4", "segment-1.m4s", "other3.mp4", "segment3.mp4"] {
                #expect(try await api.call(.get, "/hls/av1show/\(name)?\(query)").status == .notFound, "\(name)")
            }
            let debug = try await api.call(.get, "/api/debug/av1show", token: owner.accessToken)
            #expect((debug["segments"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["init3.mp4", "segment3.m4s"])
        }
    }

    @Test("an account's streams and ladders are capped")
    func quotas() async throws {
        try await withServer(configure: { $0.maxStreamsPerUser = 2; $0.maxLaddersPerUser = 1 }) { api, _ in
            let host = try await api.signUp()
            let other = try await api.signUp()
            // Stream IDs are unique across the store, which the PostgreSQL run shares between tests.
            let suffix = UUID().uuidString.prefix(8).lowercased()
            let (one, two, three, theirs) = ("one-\(suffix)", "two-\(suffix)", "three-\(suffix)", "theirs-\(suffix)")
            let first = try await api.call(.post, "/api/streams", json: ["stream_id": one, "action": "start", "ladder": ["360p30"]], token: host.accessToken)
            #expect(first.status == .created)
            let secondLadder = try await api.call(.post, "/api/streams", json: ["stream_id": two, "action": "start", "ladder": ["360p30"]], token: host.accessToken)
            #expect(secondLadder.status == .conflict && secondLadder.errorCode == "too_many_ladders", "\(secondLadder.text)")
            #expect(try await api.call(.post, "/api/streams", json: ["stream_id": two, "action": "start"], token: host.accessToken).status == .created)
            // Arming an existing stream again is no new stream, and keeps its own ladder.
            #expect(try await api.call(.post, "/api/streams", json: ["stream_id": one, "action": "start"], token: host.accessToken).status == .ok)
            let third = try await api.call(.post, "/api/streams", json: ["stream_id": three, "action": "start"], token: host.accessToken)
            #expect(third.status == .conflict && third.errorCode == "too_many_streams", "\(third.text)")
            #expect(try await api.call(.post, "/api/streams", json: ["stream_id": theirs, "action": "start", "ladder": ["360p30"]], token: other.accessToken).status == .created)
        }
    }
}
