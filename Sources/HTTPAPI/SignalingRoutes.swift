import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import NIOCore
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

/// One studio socket: a thin adapter that reads typed requests, asks the broadcast's `Room`
/// (or the room manager, the SFU) and writes the answers. The room keeps its state in the
/// store (stage, participants) and the registry (presence, events), so sockets on any node
/// agree.
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
    private var joined: (room: Room, participant: Participant)?
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
        send(SignalMessage(event: "welcome", payload: Welcome(protocol: SignalMessage.protocolVersion,
                                                             resume_seconds: Int(api.configuration.signalingResumeGrace.seconds))))
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
        let request: StudioRequest
        do {
            message = try SignalMessage.parse(text)
            request = try StudioRequest(message)
        } catch {
            send(.error(error))
            return
        }
        do {
            try await dispatch(request, id: message.id)
        } catch var error as SignalingError {
            error.id = message.id
            send(.error(error))
        } catch let error as RoomError {
            send(.error(SignalingError(error.code, error.message, id: message.id)))
        } catch let error as APIError {
            send(.error(SignalingError(error.code, error.message, id: message.id)))
        } catch {
            api.logger.error("signaling message failed", metadata: ["event": "\(message.event)", "error": "\(error)"])
            send(.error(SignalingError("internal_error", "the server could not handle that message", id: message.id)))
        }
    }

    private func dispatch(_ request: StudioRequest, id: String?) async throws {
        switch request {
        case .ping:
            send(SignalMessage(event: "pong", id: id))
        case .join(let join):
            try await self.join(join, id: id)
        case .leave:
            try requireJoined()
            await disconnected(leaving: true)
            send(SignalMessage(event: "left", id: id))
        case .status(let change):
            let (room, participant) = try requireJoined()
            try await room.setStatus(of: participant, audio: change.audioEnabled, video: change.videoEnabled)
        case .chat(let chat):
            let (room, participant) = try requireJoined()
            try await room.chat(from: participant, text: chat.text)
        case .setStage(let change):
            try await setStage(change, id: id)
        case .mute(let mute):
            let (room, host) = try requireJoined()
            _ = try await room.asHost(host)
            await room.requestMute(of: mute.participantID, kind: mute.kind.rawValue, from: host)
            send(SignalMessage(event: "ok", id: id))
        case .goLive, .endBroadcast:
            let (room, host) = try requireJoined()
            let broadcast = try await room.asHost(host)
            try await api.apply(request == .goLive ? .start : .end, to: broadcast)
            send(SignalMessage(event: "ok", id: id))
        case .offer(let offer):
            try await answer(offer, id: id)
        case .startScreenShare:
            let (room, owner) = try requireJoined()
            guard screen == nil else { throw SignalingError("already_sharing", "this participant already shares a screen") }
            let (share, info) = try await room.startScreenShare(of: owner)
            screen = share
            keepPresent(try share.requireID(), in: room)
            send(SignalMessage(event: "ok", payload: ["participant": info], id: id))
        case .stopScreenShare:
            try requireJoined()
            await stopScreenShare()
            send(SignalMessage(event: "ok", id: id))
        case .iceCandidate:
            try requireJoined()
        }
    }

    // MARK: Joining

    private func join(_ request: StudioRequest.Join, id: String?) async throws {
        guard joined == nil else { throw SignalingError("already_joined", "this socket has joined a broadcast already") }
        let member: RoomMember = switch identity {
        case .user(let userID, _, _, _): .host(userID: userID)
        case .guest(let invited, let inviteID, let name): .guest(invitedTo: invited, inviteID: inviteID, invitedName: name)
        case .operator: throw SignalingError("account_required", "the operator's token joins no studio; sign in with an account")
        }
        let room = api.rooms.room(request.broadcastID)
        let claim = request.resume.map { Room.ResumeClaim(participantID: $0.participantID, token: $0.token) }
        let entered = try await room.join(as: member, name: request.name, resume: claim)
        let participant = entered.participant
        joined = (room, participant)
        startBackground(room: room, participant: try participant.requireID())
        send(SignalMessage(event: "joined", payload: JoinedReply(
            participant: try ParticipantInfo(participant), resume_token: entered.resumeToken, participants: entered.roster,
            stage: StageBody(entered.broadcast.currentStage),
            broadcast: .init(id: request.broadcastID.uuidString, title: entered.broadcast.title, status: entered.broadcast.status)), id: id))
        try await room.announceArrival(of: participant)
    }

    /// Room events on this socket while joined; presence kept fresh, so a dropped socket
    /// frees its place only after the grace period.
    private func startBackground(room: Room, participant: UUID) {
        guard let outgoing else { return }
        let listener = participant.uuidString
        background.append(Task { [outgoing] in
            guard let events = try? await room.events() else { return }
            for await event in events {
                if Task.isCancelled { break }
                if RoomEventFilter.delivers(event, to: listener) { outgoing.yield(event) }
            }
        })
        keepPresent(participant, in: room)
    }

    private func keepPresent(_ participant: UUID, in room: Room) {
        let grace = api.configuration.signalingResumeGrace
        background.append(Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: grace / 4)
                if Task.isCancelled { break }
                await room.keepPresent(participant)
            }
        })
    }

    /// On leave: gone at once. On a dropped socket: the place and the media stay for the grace
    /// period; if the participant has not come back by then, they leave the stage and the room.
    private func disconnected(leaving: Bool) async {
        for task in background { task.cancel() }
        background = []
        guard let (room, participant) = joined else { return }
        joined = nil
        if let screen {
            self.screen = nil
            await room.depart(screen, now: leaving)
        }
        await room.depart(participant, now: leaving)
    }

    private func stopScreenShare() async {
        guard let share = screen, let (room, _) = joined else { return }
        screen = nil
        await room.depart(share, now: true)
    }

    // MARK: In the room

    @discardableResult
    private func requireJoined() throws -> (room: Room, participant: Participant) {
        guard let joined else { throw SignalingError("not_joined", "send join-broadcast first") }
        return joined
    }

    /// The host's stage controls: any of layout, participants (in order), streams, clips,
    /// banner, logo, background, comment, theme and countdown, the rest kept. A theme set here
    /// is also the host's own: their next shows start with it.
    private func setStage(_ change: StudioRequest.StageChange, id: String?) async throws {
        let (room, host) = try requireJoined()
        let broadcast = try await room.asHost(host)
        var stage = broadcast.currentStage
        if let layout = change.layout { stage.layout = layout }
        if let participants = change.participants { stage.participants = participants }
        if let streams = change.streams { stage.streams = streams }
        if let clips = change.clips { stage.clips = clips }
        if let fullscreen = change.clipFullscreen { stage.clipFullscreen = fullscreen }
        if let transition = change.transition.flatMap(Stage.Transition.init(rawValue:)) { stage.transition = transition }
        if stage.clips.isEmpty { stage.clipFullscreen = false }
        stage.banner = change.banner.applied(to: stage.banner?.text).map(Stage.Banner.init(text:))
        stage.logo = change.logo.applied(to: stage.logo)
        stage.background = change.background.applied(to: stage.background)
        stage.comment = change.comment.applied(to: stage.comment.map { .init(name: $0.name, text: $0.text) }).map { Stage.Comment(name: $0.name, text: $0.text) }
        switch change.theme {
        case .keep: break
        case .clear: stage.theme = .standard
        case .set(let fields):
            stage.theme = Stage.Theme(accent: fields.accent?.lowercased() ?? stage.theme.accent, font: fields.font ?? stage.theme.font,
                                      nametags: fields.nametags ?? stage.theme.nametags, banner: fields.banner ?? stage.theme.banner)
        }
        switch change.countdown {
        case .keep: break
        case .clear: stage.countdown = nil
        case .set(let countdown): stage.countdown = Stage.Countdown(label: countdown.label ?? Stage.Countdown.defaultLabel, seconds: countdown.seconds)
        }
        let saved = try await api.arrange(stage, in: broadcast)
        if change.theme != .keep { await api.keepTheme(saved.theme, for: broadcast.ownerID) }
        send(SignalMessage(event: "ok", payload: ["stage": StageBody(saved)], id: id))
    }

    /// An offer without a target publishes this participant's media (or its screen share);
    /// with `target`, plays that participant's. The answer comes back on this socket.
    private func answer(_ request: StudioRequest.Offer, id: String?) async throws {
        let (room, participant) = try requireJoined()
        var publisher = participant
        if request.screen {
            guard let screen else { throw SignalingError("not_sharing", "send screen-share-start first") }
            publisher = screen
        }
        let offer: SessionDescription
        do {
            offer = try SDPParser.parse(request.sdp)
        } catch {
            throw SignalingError("unacceptable_offer", error.description)
        }
        do {
            let (session, answer) = if let target = request.target {
                try await api.playAnywhere(broadcastID: room.id.uuidString, participantID: ParticipantID(target), offer: offer, owner: owner)
            } else {
                try await api.sfu.publish(broadcastID: room.id.uuidString, participantID: ParticipantID(try publisher.requireID()), offer: offer, owner: owner)
            }
            send(SignalMessage(event: "webrtc-answer", payload: Answer(sdp: answer, session_id: session.rawValue, target: request.target), id: id))
        } catch SFUError.notPublishing {
            throw SignalingError("not_publishing", "that participant is not publishing")
        } catch let error as SDPError {
            throw SignalingError("unacceptable_offer", error.description)
        } catch let error as MediaTransportError {
            throw SignalingError("media_refused", error.description)
        }
    }

    // MARK: Replies

    private struct Welcome: Encodable {
        var `protocol`: Int
        var resume_seconds: Int
    }

    private struct JoinedReply: Encodable {
        struct BroadcastSummary: Encodable {
            var id: String
            var title: String
            var status: String
        }

        var participant: ParticipantInfo
        var resume_token: String
        var participants: [ParticipantInfo]
        var stage: StageBody
        var broadcast: BroadcastSummary
    }

    private struct Answer: Encodable {
        var sdp: String
        var session_id: String
        var target: String?
    }
}

/// Which room events a socket passes on.
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
}
