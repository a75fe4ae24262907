import FluentKit
import Foundation
import Hummingbird
import NetworkPolicy
import Store

/// `PATCH`: a destination switched on or off for the show, its key kept.
struct UpdateDestinationRequest: Decodable {
    var enabled: Bool
}

struct AddDestinationRequest: Decodable {
    var platform: String
    var name: String?
    var rtmpUrl: String?
    var streamKey: String
}

/// A destination as clients see it: the stream key only ever as its last four characters.
struct DestinationResponse: APIResponse {
    var id: UUID
    var broadcastId: UUID
    var platform: String
    var name: String
    var rtmpUrl: String
    var streamKeyHint: String
    var enabled: Bool
    var status: String
    var createdAt: Date?

    init(_ destination: Destination) throws {
        id = try destination.requireID()
        broadcastId = destination.broadcastID
        platform = destination.platform
        name = destination.name
        rtmpUrl = destination.rtmpURL
        streamKeyHint = destination.streamKeyHint
        enabled = destination.enabled
        status = destination.status
        createdAt = destination.createdAt
    }
}

struct DestinationListResponse: APIResponse {
    var destinations: [DestinationResponse]
}

/// The platforms Tally knows, with the ingest URL each documents for RTMP(S) encoders.
enum Platform: String, CaseIterable {
    case youtube, twitch, facebook, custom

    var defaultIngestURL: String? {
        switch self {
        case .youtube: "rtmp://a.rtmp.youtube.com/live2"
        case .twitch: "rtmp://live.twitch.tv/app"
        case .facebook: "rtmps://live-api-s.facebook.com:443/rtmp"
        case .custom: nil
        }
    }

    var displayName: String {
        switch self {
        case .youtube: "YouTube"
        case .twitch: "Twitch"
        case .facebook: "Facebook"
        case .custom: "Custom RTMP"
        }
    }
}

extension API {
    static let maxDestinations = 10

    func addDestinationRoutes(to router: Router<AppContext>) {
        let group = router.group("api/broadcasts/:id/destinations")
        group.get { _, context in
            let broadcast = try await ownedBroadcast(context.parameters.get("id"), context: context)
            let destinations = try await Destination.query(on: store.db).filter(\.$broadcastID == (try broadcast.requireID())).sort(\.$createdAt).all()
            return DestinationListResponse(destinations: try destinations.map(DestinationResponse.init))
        }
        group.post { request, context in try await addDestination(request, context) }
        group.patch(":destId") { request, context -> DestinationResponse in
            let (broadcast, destination) = try await ownedDestination(context)
            let change = try await request.decodeJSON(UpdateDestinationRequest.self, context: context)
            destination.enabled = change.enabled
            try await destination.save(on: store.db)
            logger.info("destination \(change.enabled ? "enabled" : "disabled")", metadata: ["broadcast": "\(broadcast.loggedID)", "destination": "\(destination.loggedID)"])
            return try DestinationResponse(destination)
        }
        group.delete(":destId") { _, context in
            let (broadcast, destination) = try await ownedDestination(context)
            let id = try destination.requireID()
            try await destination.delete(on: store.db)
            logger.info("destination removed", metadata: ["broadcast": "\(broadcast.loggedID)", "destination": "\(id)"])
            return HTTPResponse.Status.noContent
        }
    }

    /// The destination in the path, of a broadcast the caller owns.
    func ownedDestination(_ context: AppContext) async throws -> (Broadcast, Destination) {
        let broadcast = try await ownedBroadcast(context.parameters.get("id"), context: context)
        let id = try Validate.uuid(context.parameters.get("destId"), what: "destination")
        guard let destination = try await Destination.find(id, on: store.db), destination.broadcastID == broadcast.id else {
            throw APIError.notFound("destination")
        }
        return (broadcast, destination)
    }

    private func addDestination(_ request: Request, _ context: AppContext) async throws -> EditedResponse<DestinationResponse> {
        let broadcast = try await ownedBroadcast(context.parameters.get("id"), context: context)
        let (platform, url, streamKey, name) = try Self.validated(try await request.decodeJSON(AddDestinationRequest.self, context: context))
        try await screenOutbound(url)
        let existing = try await Destination.query(on: store.db).filter(\.$broadcastID == (try broadcast.requireID())).count()
        guard existing < Self.maxDestinations else {
            throw APIError(.conflict, "too_many_destinations", "a broadcast can have at most \(Self.maxDestinations) destinations")
        }
        let destination = Destination(
            broadcastID: try broadcast.requireID(), platform: platform.rawValue, name: name, rtmpURL: url,
            streamKeySealed: try store.sealer.seal(streamKey), streamKeyHint: StreamKeySealer.redact(streamKey))
        try await destination.create(on: store.db)
        logger.info("destination added", metadata: [
            "broadcast": "\(broadcast.loggedID)", "destination": "\(destination.loggedID)", "platform": "\(platform.rawValue)",
            "stream_key": "\(destination.streamKeyHint)",
        ])
        return try DestinationResponse(destination).created()
    }

    /// A new destination's platform, ingest URL (the platform's own when left out), key and name.
    static func validated(_ body: AddDestinationRequest) throws -> (Platform, url: String, streamKey: String, name: String) {
        guard let platform = Platform(rawValue: body.platform) else {
            throw APIError(.badRequest, "invalid_field", "`platform` must be one of youtube, twitch, facebook, custom")
        }
        let url = try validatedIngestURL(body.rtmpUrl ?? platform.defaultIngestURL)
        let streamKey = try validatedStreamKey(body.streamKey)
        return (platform, url, streamKey, try Validate.text(body.name ?? platform.displayName, field: "name", max: 100))
    }

    static func validatedIngestURL(_ raw: String?) throws -> String {
        guard let raw else { throw APIError(.badRequest, "invalid_field", "`rtmp_url` is required for a custom destination") }
        let trimmed = raw.trimmingCharacters(in: .whitespaces)
        guard trimmed.count <= 1024, let parts = URLComponents(string: trimmed),
              let scheme = parts.scheme?.lowercased(), scheme == "rtmp" || scheme == "rtmps",
              let host = parts.host, !host.isEmpty, parts.user == nil, parts.password == nil else {
            throw APIError(.badRequest, "invalid_field", "`rtmp_url` must be an rtmp:// or rtmps:// URL with a host")
        }
        if let port = parts.port, !(1...65535).contains(port) {
            throw APIError(.badRequest, "invalid_field", "`rtmp_url` has an invalid port")
        }
        return trimmed
    }

    /// Refuses an ingest URL whose host is a loopback, private, link-local or metadata
    /// address (unless TALLY_OUTBOUND_ALLOW admits it); pushing checks again when it connects.
    func screenOutbound(_ url: String) async throws {
        guard let host = URLComponents(string: url)?.host else { return }
        if let refusal = await configuration.outboundPolicy.screen(host: host) {
            logger.notice("destination refused by the outbound policy", metadata: ["reason": "\(refusal.reason)"])
            throw APIError(.badRequest, "destination_not_allowed",
                           "`rtmp_url` points at a private, loopback or link-local address; Tally only pushes to public servers")
        }
    }

    static func validatedStreamKey(_ raw: String) throws -> String {
        let key = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...512).contains(key.count), key.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7f }) else {
            throw APIError(.badRequest, "invalid_field", "`stream_key` must be 1 to 512 printable characters without spaces")
        }
        return key
    }
}
