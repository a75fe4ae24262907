import FluentKit
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import NIOCore
import Registry
import Rooms
import SDP
import ServiceLifecycle
import SFU
import Signaling
import Store
import StudioFiles

extension API {
    /// A guest's invite link (`/join/{broadcast}?invite=…`) opens the studio page.
    func addStudioPages(to router: Hummingbird.Router<AppContext>) {
        router.get("join/:broadcast") { _, _ in try page("studio.html") }
    }

    /// A page of the studio, from the folder `TALLY_WEB_DIR` names or the built-in copy.
    func page(_ name: String) throws -> Response {
        let html = configuration.webDirectory.map { try? Data(contentsOf: $0.appendingPathComponent(name)) } ?? StudioFiles.file("web/\(name)")
        guard let html else { throw APIError.notFound("page") }
        return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: html)))
    }

    /// `GET /ws` without a WebSocket upgrade (or with a token the upgrade refused): say why in
    /// the API's error shape.
    func addSignalingRoutes(to router: Hummingbird.Router<AppContext>) {
        router.get("ws") { request, context -> HTTPResponse.Status in
            guard let token = request.uri.queryParameters.get("token") else {
                throw APIError(.unauthorized, "token_required", "connect a WebSocket to /ws?token=<access or invite token>")
            }
            let identity = try await auth.authenticate(bearer: token)
            // The upgrade was declined: say which limit, when one is why.
            if studioSockets.isFull(SessionOwner(identity: identity.sessionKey, address: context.clientAddress ?? "unknown")) {
                throw APIError(.tooManyRequests, "too_many_sockets",
                               "at most \(SocketAllowance.perIdentity) studio sockets per sign-in or invite and \(SocketAllowance.perAddress) per address",
                               headers: [.retryAfter: "10"])
            }
            throw APIError(.badRequest, "websocket_required", "/ws speaks WebSocket; send an Upgrade request")
        }
    }

    /// A browser's socket must come from a page this server served: another site's script
    /// could otherwise use a token it got hold of from the visitor's browser. Clients that
    /// are not browsers send no Origin.
    /// The host names are compared, not the ports: what separates sites is the name.
    static func isSameOrigin(_ request: HTTPRequest) -> Bool {
        guard let origin = request.headerFields[.origin] else { return true }
        guard let originHost = URLComponents(string: origin)?.host, let authority = request.authority,
              let requestHost = URLComponents(string: "http://\(authority)")?.host else { return false }
        return originHost.lowercased() == requestHost.lowercased()
    }

    /// Decides a WebSocket upgrade of `/ws?token=…`: only with a token that authenticates,
    /// from a page of this server.
    func signalingUpgrade(_ request: HTTPRequest, channel: any Channel) async -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>> {
        let uri = HummingbirdCore.URI(request.path ?? "")
        guard uri.path == "/ws", Self.isSameOrigin(request), let token = uri.queryParameters.get("token"),
              let identity = try? await auth.authenticate(bearer: token) else { return .dontUpgrade }
        let address = ForwardedClientMiddleware.client(peer: channel.remoteAddress?.ipAddress, headers: request.headerFields, trusted: configuration.trustedProxies)
        let owner = SessionOwner(identity: identity.sessionKey, address: address ?? "unknown")
        guard studioSockets.take(owner) else { return .dontUpgrade }
        // Released when the connection closes, however it ends: an upgrade that never
        // completes (the client gone mid-handshake) never runs the handler below.
        channel.closeFuture.whenComplete { [studioSockets] _ in studioSockets.release(owner) }
        return .upgrade([:]) { inbound, outbound, _ in
            await SignalingConnection(api: self, identity: identity, owner: owner, channel: channel).serve(inbound: inbound, outbound: outbound)
        }
    }
}

/// One studio socket: a host or guest joins a broadcast, hears its room events, chats,
/// publishes and plays media, and (the host) runs the show. Room state lives in the store
/// (stage, participants) and the registry (presence, events), so sockets on any node agree.
///
/// Not Sendable: its state is touched only by the task reading the socket; the tasks it
/// starts get values, never `self`.
final class SignalingConnection {
    private let api: API
    private let identity: Identity
    /// Who holds the media sessions this socket opens.
    private let owner: SessionOwner
    /// The socket's channel, closed outright when a drain finds the client unresponsive.
    private let channel: any Channel
    private var outgoing: AsyncStream<String>.Continuation?
    private var limiter = MessageRateLimiter()
    private var joined: (broadcast: UUID, participant: Participant)?
    /// The participant's screen share: a participant of its own, so it can go on stage.
    private var screen: Participant?
    private var background: [Task<Void, Never>] = []
    private let clock = ContinuousClock()
    /// How often an open socket's credential is checked against sign-outs and withdrawn invites.
    private static let revocationCheckInterval: Duration = .seconds(5)
    private let startedAt: ContinuousClock.Instant

    init(api: API, identity: Identity, owner: SessionOwner, channel: any Channel) {
        self.api = api
        self.identity = identity
        self.owner = owner
        self.channel = channel
        startedAt = clock.now
    }

    func serve(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async {
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(1024))
        outgoing = continuation
        let writer = Task {
            for await text in stream { try? await outbound.write(.text(text)) }
        }
        // A sign-out or a withdrawn invite ends the socket too, not only later requests.
        let revocationWatch = Self.watchRevocation(auth: api.auth, identity: identity, outgoing: continuation, outbound: outbound)
        defer { revocationWatch.cancel() }
        send(SignalMessage(event: "welcome", data: ["protocol": SignalMessage.protocolVersion, "resume_seconds": Int(api.configuration.signalingResumeGrace.seconds)]))
        do {
            // On SIGTERM the socket is closed as "going away": the studio reconnects (to this
            // node once it is back, or another) and resumes its place within the grace period.
            try await withGracefulShutdownHandler {
                try await readMessages(inbound, outbound: outbound)
            } onGracefulShutdown: { [channel] in
                // A client that never answers the close is cut off shortly after, so it cannot hold up the drain.
                Task {
                    try? await outbound.close(.goingAway, reason: "server shutting down")
                    try? await Task.sleep(for: .seconds(2))
                    channel.close(promise: nil)
                }
            }
        } catch {
            // A message over the cap ends the stream with an error: say so before closing.
            send(.error(.tooLarge))
            try? await Task.sleep(for: .milliseconds(50))
            try? await outbound.close(.messageTooLarge, reason: "message too large")
        }
        await disconnected(leaving: false)
        continuation.finish()
        await writer.value
    }

    private static func watchRevocation(auth: AuthService, identity: Identity, outgoing: AsyncStream<String>.Continuation,
                                        outbound: WebSocketOutboundWriter) -> Task<Void, Never> {
        Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: revocationCheckInterval)
                guard !Task.isCancelled, (try? await auth.isRevoked(identity)) == true else { continue }
                outgoing.yield(SignalMessage.error(SignalingError("session_revoked", "this session was signed out or its invite withdrawn")).encoded())
                try? await Task.sleep(for: .milliseconds(100))
                try? await outbound.close(.policyViolation, reason: "signed out")
                return
            }
        }
    }

    /// Handles messages until the socket closes; returns early once the limiter disconnects it.
    private func readMessages(_ inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        for try await message in inbound.messages(maxSize: SignalMessage.maxBytes) {
            guard case .text(let text) = message else {
                send(.error(SignalingError("text_only", "messages are JSON text frames")))
                continue
            }
            switch limiter.admit(now: clock.now - startedAt) {
            case .allow:
                await handle(text)
            case .refuse:
                send(.error(SignalingError("rate_limited", "too many messages; slow down")))
            case .disconnect:
                send(.error(SignalingError("rate_limited", "too many messages for too long; disconnecting")))
                try? await outbound.close(.policyViolation, reason: "rate limited")
                return
            }
        }
    }

    private func send(_ message: SignalMessage) {
        outgoing?.yield(message.encoded())
    }

    private func handle(_ text: String) async {
        let message: SignalMessage
        do {
            message = try SignalMessage.parse(text)
        } catch {
            send(.error(error))
            return
        }
        do {
            try await dispatch(message)
        } catch let error as SignalingError {
            send(.error(error))
        } catch let error as APIError {
            send(.error(SignalingError(error.code, error.message, id: message.id)))
        } catch {
            api.logger.error("signaling message failed", metadata: ["event": "\(message.event)", "error": "\(error)"])
            send(.error(SignalingError("internal_error", "the server could not handle that message", id: message.id)))
        }
    }

    private func dispatch(_ message: SignalMessage) async throws {
        switch message.event {
        case "ping":
            send(SignalMessage(event: "pong", id: message.id))
        case "join-broadcast":
            try await join(message)
        case "leave-broadcast":
            try requireJoined(message)
            await disconnected(leaving: true)
            send(SignalMessage(event: "left", id: message.id))
        case "participant-status":
            try await updateStatus(message)
        case "chat-message":
            try await chat(message)
        case "stage-set":
            try await setStage(message)
        case "mute-request":
            try await requestMute(message)
        case "go-live", "end-broadcast":
            let (broadcast, _) = try await requireHost(message)
            try await api.apply(message.event == "go-live" ? .start : .end, to: broadcast)
            send(SignalMessage(event: "ok", id: message.id))
        case "webrtc-offer":
            try await answer(message)
        case "screen-share-start":
            try await startScreenShare(message)
        case "screen-share-stop":
            try requireJoined(message)
            await stopScreenShare()
            send(SignalMessage(event: "ok", id: message.id))
        case "ice-candidate":
            // Tally is ICE-lite: it learns the client's addresses from the checks themselves.
            try requireJoined(message)
        default:
            throw SignalingError("unknown_event", "no such event: \(message.event)", id: message.id)
        }
    }

    // MARK: Joining

    private func join(_ message: SignalMessage) async throws {
        guard joined == nil else { throw SignalingError("already_joined", "this socket has joined a broadcast already", id: message.id) }
        guard let broadcastID = UUID(uuidString: try message.string("broadcast_id", max: 64)) else {
            throw SignalingError("invalid_field", "`data.broadcast_id` must be a UUID", id: message.id)
        }
        guard let broadcast = try await Broadcast.find(broadcastID, on: api.store.db) else { throw APIError.notFound("broadcast") }
        switch identity {
        case .user(let userID, _, _, _):
            guard broadcast.ownerID == userID else { throw SignalingError("not_owner", "only the broadcast's owner joins as its host", id: message.id) }
        case .guest(let invited, _, _):
            guard invited == broadcastID else { throw SignalingError("not_invited", "this invite is for another broadcast", id: message.id) }
        }
        guard broadcast.status != BroadcastStatus.ended.rawValue else {
            throw SignalingError("broadcast_ended", "this broadcast has ended", id: message.id)
        }
        let room = broadcastID.uuidString
        var participant = try await resumed(message, broadcast: broadcastID)
        if participant == nil { participant = try await newParticipant(message, broadcast: broadcastID) }
        guard let participant else { return }
        let participantID = try participant.requireID().uuidString
        let present = try await api.registry.present(room: room)
        guard present.count < StageRules.maxInStudio || present.contains(participantID) else {
            throw SignalingError("studio_full", "the studio holds \(StageRules.maxInStudio) people at most", id: message.id)
        }
        joined = (broadcastID, participant)
        try await api.registry.markPresent(room: room, participant: participantID, ttl: api.configuration.signalingResumeGrace)
        let resumeToken = Self.resumeToken()
        try await api.registry.storeResumeToken(participant: participantID, token: resumeToken, ttl: .seconds(24 * 3600))
        startBackground(room: room, participant: participantID)

        let members = try await roster(broadcast: broadcastID, present: Set(present + [participantID]))
        let publishing = await api.sfu.publishingParticipants(broadcastID: room)
        send(SignalMessage(event: "joined", data: [
            "participant": try Self.describe(participant), "resume_token": resumeToken,
            "participants": try members.map { member in
                var description = try Self.describe(member)
                description["publishing"] = publishing.contains(ParticipantID(try member.requireID()))
                return description
            },
            "stage": Self.describe(broadcast.currentStage),
            "broadcast": ["id": room, "title": broadcast.title, "status": broadcast.status],
        ], id: message.id))
        await publish(SignalMessage(event: "participant-joined", data: ["participant": try Self.describe(participant)]), room: broadcastID)
    }

    /// The participant a reconnecting client held, if it proves it with the resume token.
    private func resumed(_ message: SignalMessage, broadcast: UUID) async throws -> Participant? {
        guard let resume = message.data["resume"] as? [String: any Sendable] else { return nil }
        guard let id = (resume["participant_id"] as? String).flatMap(UUID.init(uuidString:)), let token = resume["token"] as? String,
              let expected = try await api.registry.resumeToken(participant: id.uuidString), expected == token,
              let participant = try await Participant.find(id, on: api.store.db), participant.broadcastID == broadcast else {
            throw SignalingError("resume_refused", "that place cannot be resumed; join afresh", id: message.id)
        }
        return participant
    }

    private func newParticipant(_ message: SignalMessage, broadcast: UUID) async throws -> Participant {
        let participant: Participant
        switch identity {
        case .user(let userID, _, _, _):
            let name = try await User.find(userID, on: api.store.db)?.name ?? "Host"
            participant = Participant(broadcastID: broadcast, userID: userID, name: name, role: .host)
        case .guest(_, let inviteID, let invitedName):
            let given = try message.optionalString("name", max: 100)?.trimmingCharacters(in: .whitespacesAndNewlines)
            let name = (given?.isEmpty == false ? given : nil) ?? invitedName ?? "Guest"
            participant = Participant(broadcastID: broadcast, userID: nil, name: name, role: .guest, inviteID: inviteID)
        }
        try await api.admit(participant)
        return participant
    }

    /// Room events on this socket while joined; presence kept fresh, so a dropped socket
    /// frees its place only after the grace period.
    private func startBackground(room: String, participant: String) {
        let registry = api.registry
        guard let outgoing else { return }
        background.append(Task { [registry, outgoing] in
            guard let events = try? await registry.roomEvents(room: room) else { return }
            for await event in events {
                if Task.isCancelled { break }
                if RoomEventFilter.delivers(event, to: participant) { outgoing.yield(event) }
            }
        })
        keepPresent(participant, room: room)
    }

    private func keepPresent(_ participant: String, room: String) {
        let registry = api.registry
        let grace = api.configuration.signalingResumeGrace
        background.append(Task { [registry] in
            while !Task.isCancelled {
                try? await Task.sleep(for: grace / 4)
                if Task.isCancelled { break }
                try? await registry.markPresent(room: room, participant: participant, ttl: grace)
            }
        })
    }

    /// On leave: gone at once. On a dropped socket: the place and the media stay for the grace
    /// period; if the participant has not come back by then, they leave the stage and the room.
    private func disconnected(leaving: Bool) async {
        for task in background { task.cancel() }
        background = []
        guard let (broadcast, participant) = joined else { return }
        joined = nil
        let api = self.api
        if let screen {
            self.screen = nil
            await Self.depart(screen, from: broadcast, api: api, now: leaving)
        }
        await Self.depart(participant, from: broadcast, api: api, now: leaving)
    }

    /// At once, or after the grace period if the participant has not come back by then.
    private static func depart(_ participant: Participant, from broadcast: UUID, api: API, now: Bool) async {
        guard let participantID = participant.id else { return }
        let id = participantID.uuidString
        if now {
            try? await api.registry.markAbsent(room: broadcast.uuidString, participant: id)
            await RoomEventFilter.leave(participantID, from: broadcast, api: api)
            return
        }
        await api.departures.schedule(id, after: api.configuration.signalingResumeGrace + .milliseconds(500)) { [api] in
            let present = (try? await api.registry.present(room: broadcast.uuidString)) ?? []
            if !present.contains(id) { await RoomEventFilter.leave(participantID, from: broadcast, api: api) }
        }
    }

    // MARK: Screen share

    private func startScreenShare(_ message: SignalMessage) async throws {
        let (broadcast, owner) = try requireJoined(message)
        guard screen == nil else { throw SignalingError("already_sharing", "this participant already shares a screen", id: message.id) }
        let present = try await api.registry.present(room: broadcast.uuidString)
        guard present.count < StageRules.maxInStudio else {
            throw SignalingError("studio_full", "the studio holds \(StageRules.maxInStudio) sources at most", id: message.id)
        }
        let share = Participant(broadcastID: broadcast, userID: owner.userID, name: "\(owner.name) (screen)",
                                role: ParticipantRole(rawValue: owner.role) ?? .guest, inviteID: owner.inviteID)
        try await api.admit(share)
        screen = share
        let id = try share.requireID().uuidString
        try await api.registry.markPresent(room: broadcast.uuidString, participant: id, ttl: api.configuration.signalingResumeGrace)
        keepPresent(id, room: broadcast.uuidString)
        var description = try Self.describe(share)
        description["screen_of"] = try owner.requireID().uuidString
        send(SignalMessage(event: "ok", data: ["participant": description], id: message.id))
        await publish(SignalMessage(event: "participant-joined", data: ["participant": description]), room: broadcast)
    }

    private func stopScreenShare() async {
        guard let share = screen, let (broadcast, _) = joined else { return }
        screen = nil
        await Self.depart(share, from: broadcast, api: api, now: true)
    }

    // MARK: In the room

    @discardableResult
    private func requireJoined(_ message: SignalMessage) throws -> (broadcast: UUID, participant: Participant) {
        guard let joined else { throw SignalingError("not_joined", "send join-broadcast first", id: message.id) }
        return joined
    }

    private func requireHost(_ message: SignalMessage) async throws -> (Broadcast, Participant) {
        let (broadcastID, participant) = try requireJoined(message)
        guard participant.role == ParticipantRole.host.rawValue else {
            throw SignalingError("host_only", "only the host can do that", id: message.id)
        }
        guard let broadcast = try await Broadcast.find(broadcastID, on: api.store.db) else { throw APIError.notFound("broadcast") }
        return (broadcast, participant)
    }

    private func updateStatus(_ message: SignalMessage) async throws {
        let (broadcast, participant) = try requireJoined(message)
        if let audio = try message.bool("audio_enabled") { participant.audioEnabled = audio }
        if let video = try message.bool("video_enabled") { participant.videoEnabled = video }
        try await participant.save(on: api.store.db)
        await publish(SignalMessage(event: "participant-status-updated", data: ["participant": try Self.describe(participant)]), room: broadcast)
    }

    private func chat(_ message: SignalMessage) async throws {
        let (broadcast, participant) = try requireJoined(message)
        let text = try message.string("text", max: 1000).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw SignalingError("invalid_field", "a chat message needs some text", id: message.id) }
        await publish(SignalMessage(event: "chat-message", data: [
            "participant_id": try participant.requireID().uuidString, "name": participant.name, "text": text,
            "sent_at": ISO8601DateFormatter().string(from: Date()),
        ]), room: broadcast)
    }

    /// The host's stage controls: any of layout, participants (in order) and banner, the rest kept.
    private func setStage(_ message: SignalMessage) async throws {
        let (broadcast, _) = try await requireHost(message)
        var stage = broadcast.currentStage
        if let layout = try message.optionalString("layout", max: 40) { stage.layout = layout }
        if let list = message.data["participants"] {
            guard let ids = list as? [any Sendable], ids.count <= 64 else {
                throw SignalingError("invalid_field", "`data.participants` is a list of participant ids", id: message.id)
            }
            stage.participants = try ids.map { value throws(SignalingError) in
                guard let text = value as? String, let id = UUID(uuidString: text) else {
                    throw SignalingError("invalid_field", "`data.participants` holds participant ids", id: message.id)
                }
                return id
            }
        }
        if let list = message.data["streams"] {
            guard let ids = list as? [any Sendable], ids.count <= 64 else {
                throw SignalingError("invalid_field", "`data.streams` is a list of ingest stream ids", id: message.id)
            }
            stage.streams = try ids.map { value throws(SignalingError) in
                guard let text = value as? String, !text.isEmpty, text.count <= 64 else {
                    throw SignalingError("invalid_field", "`data.streams` holds ingest stream ids", id: message.id)
                }
                return text
            }
        }
        if message.data.keys.contains("banner") {
            stage.banner = try (message.data["banner"] as? [String: any Sendable]).map { banner throws(SignalingError) in
                guard let text = banner["text"] as? String else { throw SignalingError("invalid_field", "`data.banner.text` is the banner's text", id: message.id) }
                return Stage.Banner(text: text)
            }
        }
        for key in ["logo", "background"] where message.data.keys.contains(key) {
            let url = try message.optionalString(key, max: 300)
            if key == "logo" { stage.logo = url } else { stage.background = url }
        }
        let saved = try await api.arrange(stage, in: broadcast)
        send(SignalMessage(event: "ok", data: ["stage": Self.describe(saved)], id: message.id))
    }

    private func requestMute(_ message: SignalMessage) async throws {
        let (broadcast, host) = try await requireHost(message)
        let target = try message.string("participant_id", max: 64)
        let kind = try message.optionalString("kind", max: 10) ?? "audio"
        guard ["audio", "video"].contains(kind) else { throw SignalingError("invalid_field", "`data.kind` is audio or video", id: message.id) }
        await publish(SignalMessage(event: "mute-request", data: ["target": target, "kind": kind, "from": host.name]), room: try broadcast.requireID())
        send(SignalMessage(event: "ok", id: message.id))
    }

    /// An offer without a target publishes this participant's media; with `target`, plays
    /// that participant's. The answer comes back on this socket.
    private func answer(_ message: SignalMessage) async throws {
        let (broadcast, participant) = try requireJoined(message)
        let target = try message.optionalString("target", max: 64)
        var publisher = participant
        if try message.optionalString("source", max: 10) == "screen" {
            guard let screen else { throw SignalingError("not_sharing", "send screen-share-start first", id: message.id) }
            publisher = screen
        }
        let offer: SessionDescription
        do {
            offer = try SDPParser.parse(try message.string("sdp", max: SDPParser.maxSize))
        } catch let error as SDPError {
            throw SignalingError("unacceptable_offer", error.description, id: message.id)
        }
        do {
            let (session, answer) = if let target {
                try await api.sfu.play(broadcastID: broadcast.uuidString, participantID: ParticipantID(target), offer: offer, owner: owner)
            } else {
                try await api.sfu.publish(broadcastID: broadcast.uuidString, participantID: ParticipantID(try publisher.requireID()), offer: offer, owner: owner)
            }
            var data: [String: any Sendable] = ["sdp": answer, "session_id": session.rawValue]
            if let target { data["target"] = target }
            send(SignalMessage(event: "webrtc-answer", data: data, id: message.id))
        } catch SFUError.notPublishing {
            throw SignalingError("not_publishing", "that participant is not publishing", id: message.id)
        } catch let error as SDPError {
            throw SignalingError("unacceptable_offer", error.description, id: message.id)
        } catch let error as MediaTransportError {
            throw SignalingError("media_refused", error.description, id: message.id)
        }
    }

    // MARK: Helpers

    private func publish(_ message: SignalMessage, room: UUID) async {
        await api.announce(message.encoded(), in: room)
    }

    private func roster(broadcast: UUID, present: Set<String>) async throws -> [Participant] {
        try await Participant.query(on: api.store.db).filter(\.$broadcastID == broadcast).sort(\.$createdAt).all()
            .filter { $0.id.map { present.contains($0.uuidString) } ?? false }
    }

    private static func describe(_ participant: Participant) throws -> [String: any Sendable] {
        ["id": try participant.requireID().uuidString, "name": participant.name, "role": participant.role,
         "audio_enabled": participant.audioEnabled, "video_enabled": participant.videoEnabled]
    }

    private static func describe(_ stage: Stage) -> [String: any Sendable] {
        ["layout": stage.layout, "participants": stage.participants.map(\.uuidString), "streams": stage.streams,
         "banner": stage.banner.map { ["text": $0.text] as [String: any Sendable] } ?? NSNull(),
         "logo": stage.logo ?? NSNull(), "background": stage.background ?? NSNull()]
    }

    private static func resumeToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(generator.next() as UInt64, radix: 36) }.joined()
    }
}

/// What happens to a room outside any one socket.
enum RoomEventFilter {
    /// Whether a room event goes to this participant's socket: events meant for one
    /// participant carry `"target": id`, and nobody is told of their own arrival (the
    /// `joined` reply says it).
    static func delivers(_ event: String, to participant: String) -> Bool {
        guard let object = try? JSONSerialization.jsonObject(with: Data(event.utf8)) as? [String: Any],
              let data = object["data"] as? [String: Any] else { return true }
        if let target = data["target"] as? String { return target == participant }
        if object["event"] as? String == "participant-joined" { return (data["participant"] as? [String: Any])?["id"] as? String != participant }
        return true
    }

    /// A participant leaves: off the stage, their media stopped, everyone told.
    static func leave(_ id: UUID, from broadcastID: UUID, api: API) async {
        if let broadcast = try? await Broadcast.find(broadcastID, on: api.store.db), broadcast.currentStage.participants.contains(id) {
            var stage = broadcast.currentStage
            stage.participants.removeAll { $0 == id }
            _ = try? await api.arrange(stage, in: broadcast)
        }
        _ = await api.sfu.unpublish(participantID: ParticipantID(id))
        let left = SignalMessage(event: "participant-left", data: ["participant_id": id.uuidString])
        await api.announce(left.encoded(), in: broadcastID)
    }
}
