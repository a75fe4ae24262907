import FluentKit
import Foundation
import Hummingbird
import Ingest
import Rooms
import Store

struct StreamActionRequest: Decodable {
    var streamId: String
    var action: String
    /// Whether HLS plays without a signed URL; kept as it was when left out.
    var publicHls: Bool?
    /// SRT encryption: 10 to 79 characters sets it, "" turns it off, left out keeps it.
    var srtPassphrase: String?
    /// Renditions to transcode besides the source (`["720p30", "360p30"]`); [] for none,
    /// left out keeps what the stream has.
    var ladder: [String]?
}

/// Where an encoder sends a stream.
struct IngestEndpoints: Codable {
    /// The server URL OBS asks for ("Server"), without the key.
    var rtmp: String
    /// Server URL and key in one, for ffmpeg and the like; only when the key is shown.
    var rtmpPublishUrl: String?
    /// The SRT listener, without a stream ID.
    var srt: String
    /// With the stream ID that publishes with the key; only when the key is shown.
    var srtPublishUrl: String?
    /// The WHIP endpoint (OBS's "Server" with the service "WHIP"); the key is its bearer token.
    var whip: String
}

/// An ingest stream as its owner sees it. The stream key is shown whole only in the answer
/// to a `start` that created the stream; otherwise as its last four characters.
struct StreamResponse: APIResponse {
    var streamId: String
    var status: String
    var isLive: Bool
    var streamKey: String?
    var streamKeyHint: String
    var publicHls: Bool
    var srtEncrypted: Bool
    var ladder: [String]
    /// Where the stream is restreamed as it comes.
    var destinations: [StreamDestinationResponse]
    var ingest: IngestEndpoints
    var hlsUrl: String
    /// What the encoder sends now, in bits per second; 0 while nothing publishes.
    var bitrateBps: Int
    var startTime: Date?
    var lastError: String?
    var createdAt: Date?
}

/// A restream destination of an ingest stream; the key only as its last four characters.
struct StreamDestinationResponse: APIResponse {
    var id: UUID
    var platform: String
    var name: String
    var rtmpUrl: String
    var streamKeyHint: String
    /// idle (no publisher yet), connecting, live, reconnecting or failed.
    var status: String
    /// Why it is reconnecting or failed, as the server or the network said it.
    var reason: String?
    var createdAt: Date?

    /// `state`: the relay's push as the ingest stream reports it; nil while it has none.
    init(_ relay: IngestRelayRecord, state: (name: String, reason: String?)?) throws {
        id = try relay.requireID()
        platform = relay.platform
        name = relay.name
        rtmpUrl = relay.rtmpURL
        streamKeyHint = relay.streamKeyHint
        status = state?.name ?? "idle"
        reason = state?.reason
        createdAt = relay.createdAt
    }
}

struct StreamDestinationListResponse: APIResponse {
    var destinations: [StreamDestinationResponse]
}

struct StreamListResponse: APIResponse {
    var streams: [StreamResponse]
}

/// `GET /api/hls/{id}`, in the shape video players of the StreamApp seed expect.
struct HLSMetadataResponse: APIResponse {
    struct Metadata: Codable {
        var hlsUrl: String
        var streamUrl: String
        var accessToken: String
        var expiresAt: Date
        var cdnDomain: String
        var isLive: Bool
        var startTime: Date?
    }

    var message: String
    var streamId: String
    var status: String
    var data: Metadata
}

struct StreamDebugResponse: APIResponse {
    struct Track: Codable {
        var codec: String
        var width: Int?
        var height: Int?
        var framesPerSecond: Int?
        var sampleRate: Int?
        var channels: Int?
    }

    struct Publisher: Codable {
        var transport: String
        var remoteAddress: String
        var connectedAt: Date
    }

    struct SegmentFile: Codable {
        var name: String
        var bytes: Int
    }

    var streamId: String
    var status: String
    var isLive: Bool
    var slateShowing: Bool
    var publisher: Publisher?
    var publishersSinceStart: Int
    var video: Track?
    var audio: Track?
    var bitrate: Int
    var framesPerSecond: Double
    var droppedFrames: Int
    var hlsViewers: Int
    var uptimeSeconds: Double
    var timelineSeconds: Double
    var lastError: String?
    var playlist: String?
    var segments: [SegmentFile]
}

extension API {
    func addStreamRoutes(to router: Router<AppContext>) {
        router.post("api/streams") { request, context -> EditedResponse<StreamResponse> in
            let userID = try context.requireUser()
            let body = try await request.decodeJSON(StreamActionRequest.self, context: context)
            let id = try Self.validStreamID(body.streamId)
            switch body.action {
            case "start":
                let passphrase = try body.srtPassphrase.map(Self.validPassphrase)
                let ladder = try body.ladder.map(Self.validLadder)
                return try await startStream(id, publicHLS: body.publicHls, passphrase: passphrase, ladder: ladder, owner: userID, request: request, context: context)
            case "stop":
                let record = try await ownedStream(id, context: context)
                record.status = IngestStatus.stopped.rawValue
                record.startedAt = nil
                try await record.save(on: store.db)
                ingest.stop(id)
                return EditedResponse(status: .ok, response: try await response(record, request: request, context: context))
            default:
                throw APIError(.badRequest, "invalid_field", "`action` is \"start\" or \"stop\"")
            }
        }
        router.get("api/streams") { request, context -> StreamListResponse in
            let userID = try context.requireUser()
            let records = try await IngestStreamRecord.query(on: store.db).filter(\.$ownerID == userID).sort(\.$createdAt).all()
            var streams: [StreamResponse] = []
            for record in records { streams.append(try await response(record, request: request, context: context)) }
            return StreamListResponse(streams: streams)
        }
        router.get("api/streams/:id") { request, context -> StreamResponse in
            try await response(try await ownedStream(context.parameters.get("id"), context: context), request: request, context: context)
        }
        // A new key, shown once: the old one stops working at once, and an encoder using it is
        // disconnected (a leaked key is what this is for).
        router.post("api/streams/:id/key") { request, context -> StreamResponse in
            let record = try await ownedStream(context.parameters.get("id"), context: context)
            let key = Self.newStreamKey()
            record.streamKeySealed = try store.sealer.seal(key)
            record.streamKeyDigest = store.sealer.lookupDigest(key)
            record.streamKeyHint = StreamKeySealer.redact(key)
            try await record.save(on: store.db)
            if record.status != IngestStatus.stopped.rawValue, record.status != IngestStatus.error.rawValue {
                ingest.stop(record.streamID)
                ingest.start(record.streamID, settings: try await IngestStreams.settings(record, store: store, logger: logger))
            }
            logger.info("stream key regenerated", metadata: ["stream": "\(record.streamID)", "stream_key": "\(record.streamKeyHint)"])
            return try await shownWithKey(record, key: key, request: request, context: context)
        }
        router.delete("api/streams/:id") { _, context -> Response in
            let record = try await ownedStream(context.parameters.get("id"), context: context)
            try await IngestRelayRecord.query(on: store.db).filter(\.$ingestStreamID == (try record.requireID())).delete()
            try await record.delete(on: store.db)
            ingest.remove(record.streamID)
            return Response(status: .noContent)
        }
        router.get("api/hls/:id") { request, context -> HLSMetadataResponse in
            let record = try await ownedStream(context.parameters.get("id"), context: context)
            let lifetime = try Self.urlLifetime(request.uri.queryParameters.get("ttl"), fallback: Int(configuration.hlsURLLifetime.components.seconds))
            let expires = Int(Date().timeIntervalSince1970) + lifetime
            let token = hlsSigner.token(streamID: record.streamID, expires: expires)
            let snapshot = ingest.stream(record.streamID)?.snapshot
            let hlsURL = "\(baseURL(request, context))/hls/\(record.streamID)/\(HLSFiles.playlistName)"
            return HLSMetadataResponse(
                message: "HLS stream metadata", streamId: record.streamID, status: IngestStreams.status(of: record, snapshot: snapshot).rawValue,
                data: .init(hlsUrl: hlsURL, streamUrl: "\(hlsURL)?expires=\(expires)&token=\(token)", accessToken: token,
                            expiresAt: Date(timeIntervalSince1970: Double(expires)), cdnDomain: hostName(request),
                            isLive: snapshot?.isLive ?? false, startTime: snapshot?.startTime ?? record.startedAt))
        }
        router.get("api/debug/:id") { _, context -> StreamDebugResponse in
            let record = try await ownedStream(context.parameters.get("id"), context: context)
            return debug(record)
        }
        router.get("api/streams/:id/destinations") { _, context -> StreamDestinationListResponse in
            let record = try await ownedStream(context.parameters.get("id"), context: context)
            let relays = try await IngestRelayRecord.query(on: store.db).filter(\.$ingestStreamID == (try record.requireID())).sort(\.$createdAt).all()
            let states = ingest.stream(record.streamID)?.snapshot.relays ?? [:]
            return StreamDestinationListResponse(destinations: try relays.map { try StreamDestinationResponse($0, state: states[try $0.requireID().uuidString].map { ($0.name, $0.reason) }) })
        }
        router.post("api/streams/:id/destinations") { request, context -> EditedResponse<StreamDestinationResponse> in
            let record = try await ownedStream(context.parameters.get("id"), context: context)
            let (platform, url, streamKey, name) = try Self.validated(try await request.decodeJSON(AddDestinationRequest.self, context: context))
            try await screenOutbound(url)
            let existing = try await IngestRelayRecord.query(on: store.db).filter(\.$ingestStreamID == (try record.requireID())).count()
            guard existing < Self.maxDestinations else {
                throw APIError(.conflict, "too_many_destinations", "a stream can have at most \(Self.maxDestinations) destinations")
            }
            let relay = IngestRelayRecord(ingestStreamID: try record.requireID(), platform: platform.rawValue, name: name, rtmpURL: url,
                                          streamKeySealed: try store.sealer.seal(streamKey), streamKeyHint: StreamKeySealer.redact(streamKey))
            try await relay.create(on: store.db)
            ingest.configure(record.streamID, settings: try await IngestStreams.settings(record, store: store, logger: logger))
            logger.info("stream destination added", metadata: ["stream": "\(record.streamID)", "destination": "\(relay.loggedID)", "platform": "\(platform.rawValue)"])
            return EditedResponse(status: .created, response: try StreamDestinationResponse(relay, state: nil))
        }
        router.delete("api/streams/:id/destinations/:destId") { _, context -> Response in
            let record = try await ownedStream(context.parameters.get("id"), context: context)
            let id = try Validate.uuid(context.parameters.get("destId"), what: "destination")
            guard let relay = try await IngestRelayRecord.find(id, on: store.db), relay.ingestStreamID == record.id else {
                throw APIError.notFound("destination")
            }
            try await relay.delete(on: store.db)
            ingest.configure(record.streamID, settings: try await IngestStreams.settings(record, store: store, logger: logger))
            logger.info("stream destination removed", metadata: ["stream": "\(record.streamID)", "destination": "\(id)"])
            return Response(status: .noContent)
        }
    }

    /// `passphrase`: nil keeps what the stream has, "" removes it.
    /// An account's streams, and those with a ladder, are capped: each stream takes a key
    /// and an HLS directory, and each ladder a transcode whenever its encoder publishes.
    private func checkStreamQuotas(owner: UUID, adding: Bool, ladder: String?, current: IngestStreamRecord?) async throws {
        let owned = try await IngestStreamRecord.query(on: store.db).filter(\.$ownerID == owner).all()
        if adding, owned.count >= configuration.maxStreamsPerUser {
            throw APIError(.conflict, "too_many_streams", "an account keeps at most \(configuration.maxStreamsPerUser) streams; delete one first")
        }
        let wantsLadder = ladder.map { !$0.isEmpty } ?? (current?.ladder != nil)
        let otherLadders = owned.filter { $0.ladder != nil && $0.id != current?.id }.count
        if wantsLadder, otherLadders >= configuration.maxLaddersPerUser {
            throw APIError(.conflict, "too_many_ladders", "an account's streams carry at most \(configuration.maxLaddersPerUser) ladders; remove one first")
        }
    }

    private func startStream(_ id: String, publicHLS: Bool?, passphrase: String?, ladder: String?, owner: UUID,
                             request: Request, context: AppContext) async throws -> EditedResponse<StreamResponse> {
        let sealedPassphrase = try passphrase.map { $0.isEmpty ? "" : try store.sealer.seal($0) }
        let existing = try await IngestStreamRecord.query(on: store.db).filter(\.$streamID == id).first()
        if let existing, existing.ownerID != owner { throw APIError(.conflict, "stream_id_taken", "another account uses the stream ID \(id)") }
        try await checkStreamQuotas(owner: owner, adding: existing == nil, ladder: ladder, current: existing)
        if let record = existing {
            if let publicHLS { record.publicHLS = publicHLS }
            if let sealedPassphrase { record.srtPassphraseSealed = sealedPassphrase.isEmpty ? nil : sealedPassphrase }
            if let ladder { record.ladder = ladder.isEmpty ? nil : ladder }
            if record.status == IngestStatus.stopped.rawValue || record.status == IngestStatus.error.rawValue {
                record.status = IngestStatus.starting.rawValue
                record.lastError = nil
            }
            try await record.save(on: store.db)
            ingest.start(id, settings: try await IngestStreams.settings(record, store: store, logger: logger))
            return EditedResponse(status: .ok, response: try await response(record, request: request, context: context))
        }
        let key = Self.newStreamKey()
        let record = IngestStreamRecord(streamID: id, ownerID: owner, streamKeySealed: try store.sealer.seal(key),
                                        streamKeyDigest: store.sealer.lookupDigest(key), streamKeyHint: StreamKeySealer.redact(key),
                                        publicHLS: publicHLS ?? false)
        record.srtPassphraseSealed = sealedPassphrase.flatMap { $0.isEmpty ? nil : $0 }
        record.ladder = ladder.flatMap { $0.isEmpty ? nil : $0 }
        do {
            try await record.create(on: store.db)
        } catch let error as any DatabaseError where error.isConstraintFailure {
            throw APIError(.conflict, "stream_id_taken", "the stream ID \(id) is taken")
        }
        ingest.start(id, settings: try await IngestStreams.settings(record, store: store, logger: logger))
        return EditedResponse(status: .created, response: try await shownWithKey(record, key: key, request: request, context: context))
    }

    /// The stream with its key and the publish URLs that carry it: only right after the key is made.
    private func shownWithKey(_ record: IngestStreamRecord, key: String, request: Request, context: AppContext) async throws -> StreamResponse {
        var shown = try await response(record, request: request, context: context)
        shown.streamKey = key
        shown.ingest.rtmpPublishUrl = "\(shown.ingest.rtmp)/\(key)"
        shown.ingest.srtPublishUrl = "\(shown.ingest.srt)?streamid=#!::r=live/\(key),m=publish"
        return shown
    }

    /// The caller's stream: 404 when there is none by that ID, 403 when it is someone else's.
    private func ownedStream(_ id: String?, context: AppContext) async throws -> IngestStreamRecord {
        let userID = try context.requireUser()
        guard let id, let record = try await IngestStreamRecord.query(on: store.db).filter(\.$streamID == id).first() else {
            throw APIError.notFound("stream")
        }
        guard record.ownerID == userID else { throw APIError(.forbidden, "not_owner", "this stream belongs to someone else") }
        return record
    }

    private func response(_ record: IngestStreamRecord, request: Request, context: AppContext) async throws -> StreamResponse {
        let snapshot = ingest.stream(record.streamID)?.snapshot
        let relays = try await IngestRelayRecord.query(on: store.db).filter(\.$ingestStreamID == (try record.requireID())).sort(\.$createdAt).all()
        return StreamResponse(
            streamId: record.streamID, status: IngestStreams.status(of: record, snapshot: snapshot).rawValue, isLive: snapshot?.isLive ?? false,
            streamKey: nil, streamKeyHint: record.streamKeyHint, publicHls: record.publicHLS, srtEncrypted: record.srtPassphraseSealed != nil,
            ladder: IngestStreams.ladder(record).map(\.name), destinations: try relays.map { try StreamDestinationResponse($0, state: snapshot?.relays[try $0.requireID().uuidString].map { ($0.name, $0.reason) }) },
            ingest: IngestEndpoints(rtmp: "rtmp://\(hostName(request)):\(boundRTMPPort)/live", srt: "srt://\(hostName(request)):\(boundSRTPort)",
                                   whip: "\(baseURL(request, context))\(Self.whipIngestPath)"),
            hlsUrl: "\(baseURL(request, context))/hls/\(record.streamID)/\(HLSFiles.playlistName)", bitrateBps: snapshot?.bitrate ?? 0,
            startTime: snapshot?.startTime ?? record.startedAt, lastError: snapshot?.lastError ?? record.lastError, createdAt: record.createdAt)
    }

    private func debug(_ record: IngestStreamRecord) -> StreamDebugResponse {
        let snapshot = ingest.stream(record.streamID)?.snapshot
        let directory = ingest.hlsRoot.appendingPathComponent(record.streamID)
        let playlist = try? String(contentsOf: directory.appendingPathComponent(HLSFiles.playlistName), encoding: .utf8)
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let segments = files.filter { $0 != HLSFiles.playlistName && HLSFiles.contentType(of: $0) != nil }
            .sorted { (HLSFiles.sequence(of: $0) ?? -1, $0) < (HLSFiles.sequence(of: $1) ?? -1, $1) }.map { name in
            StreamDebugResponse.SegmentFile(
                name: name, bytes: ((try? FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent(name).path))?[.size] as? Int) ?? 0)
        }
        return StreamDebugResponse(
            streamId: record.streamID, status: IngestStreams.status(of: record, snapshot: snapshot).rawValue, isLive: snapshot?.isLive ?? false,
            slateShowing: snapshot?.slateShowing ?? false,
            publisher: snapshot?.publisher.map { .init(transport: $0.transport.rawValue, remoteAddress: $0.remoteAddress, connectedAt: $0.connectedAt) },
            publishersSinceStart: snapshot?.publishers ?? 0,
            video: snapshot?.video.map { .init(codec: $0.codec == .hevc ? "hevc" : $0.codec.rawValue.lowercased(), width: $0.width, height: $0.height,
                                               framesPerSecond: $0.framesPerSecond) },
            audio: snapshot?.audio.map { .init(codec: "aac", sampleRate: $0.sampleRate, channels: $0.channels) },
            bitrate: snapshot?.bitrate ?? 0, framesPerSecond: snapshot?.framesPerSecond ?? 0, droppedFrames: snapshot?.droppedFrames ?? 0,
            hlsViewers: snapshot?.hlsViewers ?? 0, uptimeSeconds: snapshot?.uptimeSeconds ?? 0,
            timelineSeconds: Double(snapshot?.timelineEnd ?? 0) / 1_000_000, lastError: snapshot?.lastError ?? record.lastError,
            playlist: playlist, segments: segments)
    }

    /// An ingest stream's HLS: open when the stream is public, otherwise only through a
    /// signed URL, whose query the playlist passes on to every segment.
    func serveIngestHLS(_ request: Request, _ context: AppContext, streamID: String, variant: String? = nil, file: String) throws -> Response {
        guard let stream = ingest.stream(streamID) else {
            throw APIError(.notFound, "not_live", "stream \(streamID) has no HLS here (is it started and publishing?)")
        }
        let query = request.uri.queryParameters
        var signature: String?
        if let token = query.get("token") {
            let expires = query.get("expires") ?? ""
            switch hlsSigner.check(streamID: streamID, expires: expires, token: token) {
            case .badSignature: throw APIError(.forbidden, "bad_signature", "this HLS URL's signature does not match; ask GET /api/hls/\(streamID) for a new one")
            case .expired: throw APIError(.gone, "url_expired", "this HLS URL has expired; ask GET /api/hls/\(streamID) for a new one")
            case .valid: signature = "expires=\(expires)&token=\(token)"
            }
        } else if !stream.publicHLS {
            throw APIError(.unauthorized, "signature_required", "this stream plays through a signed URL: GET /api/hls/\(streamID) gives one")
        }
        guard let contentType = HLSFiles.contentType(of: file) else { throw APIError(.notFound, "not_found", "no such HLS file") }
        let isPlaylist = file == HLSFiles.playlistName
        if let variant, variant != Rendition.sourceName, Rendition.named(variant) == nil {
            throw APIError(.notFound, "not_found", "no HLS rendition \(variant)")
        }
        var directory = ingest.hlsRoot.appendingPathComponent(streamID)
        if let variant { directory.appendPathComponent(variant) }
        let path = directory.appendingPathComponent(file).path
        guard var data = FileManager.default.contents(atPath: path) else {
            throw APIError(.notFound, "not_live", "stream \(streamID) has no HLS \(isPlaylist ? "playlist" : "segment") yet")
        }
        if isPlaylist {
            stream.noteViewer(context.clientAddress ?? signature ?? "unknown")
            if let signature {
                let text = String(decoding: data, as: UTF8.self)
                data = Data(text.split(separator: "\n", omittingEmptySubsequences: false)
                    .map { line in
                        if line.hasPrefix("#EXT-X-MAP:URI=\""), line.hasSuffix("\"") { return "\(line.dropLast())?\(signature)\"" }
                        return line.isEmpty || line.hasPrefix("#") ? String(line) : "\(line)?\(signature)"
                    }
                    .joined(separator: "\n").utf8)
            }
        }
        return Self.hlsResponse(data, contentType: contentType)
    }

    /// Letters, digits, `-` and `_`, up to 64, not shaped like a UUID (those name broadcasts' HLS).
    static func validStreamID(_ text: String) throws -> String {
        let allowed = text.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" }
        guard !text.isEmpty, text.count <= 64, allowed, text.first != "-", text.first != "_" else {
            throw APIError(.badRequest, "invalid_field", "`stream_id` is 1 to 64 letters, digits, - or _, starting with a letter or digit")
        }
        guard UUID(uuidString: text) == nil else {
            throw APIError(.badRequest, "invalid_field", "`stream_id` must not be a UUID; those name broadcasts")
        }
        return text
    }

    /// libsrt takes passphrases of 10 to 79 characters; "" (no encryption) passes through.
    static func validPassphrase(_ text: String) throws -> String {
        guard text.isEmpty || (10...79).contains(text.utf8.count) else {
            throw APIError(.badRequest, "invalid_field", "`srt_passphrase` is 10 to 79 characters, or \"\" for none")
        }
        return text
    }

    /// Rendition names as the API takes them, checked and put best first, as a stored list.
    static func validLadder(_ names: [String]) throws -> String {
        for name in names where Rendition.named(name) == nil {
            throw APIError(.badRequest, "invalid_field", "`ladder` takes \(Rendition.all.map(\.name).joined(separator: ", ")); not \(name)")
        }
        return Rendition.all.filter { names.contains($0.name) }.map(\.name).joined(separator: ",")
    }

    static func urlLifetime(_ text: String?, fallback: Int) throws -> Int {
        guard let text else { return fallback }
        guard let seconds = Int(text), (60...7 * 86400).contains(seconds) else {
            throw APIError(.badRequest, "invalid_field", "`ttl` is a number of seconds from 60 to 604800")
        }
        return seconds
    }

    static func newStreamKey() -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        return "live_" + String((0..<24).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
    }
}
