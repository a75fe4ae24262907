import Logging
import MediaPlane
import NIOCore
import SDP

public enum SFUError: Error, CustomStringConvertible {
    case notPublishing(ParticipantID)

    public var description: String {
        switch self {
        case .notPublishing(let participant): "participant \(participant) is not publishing"
        }
    }
}

/// Every broadcast's router, kept on the media transport's event loop, and the entry points
/// for publishing (WHIP) and playing (WHEP). It answers offers itself and hands the
/// transport the negotiated RTP parameters.
///
/// `@unchecked Sendable`: its dictionaries are touched only on `transport.loop`.
public final class SFU: @unchecked Sendable {
    public let transport: any MediaTransport
    private let logger: Logger
    private(set) var routers: [String: Router] = [:]
    /// Ticks every router's own evaluation (active speaker, publisher layers) while any exists.
    private var routerTicks: RepeatedTask?
    /// How often routers are ticked; each throttles its evaluations further.
    static let routerTickInterval = TimeAmount.milliseconds(100)
    private var publishers: [ParticipantID: SessionID] = [:]
    /// Publishing sessions still in ICE/DTLS, by participant: their producers are not in the router yet.
    var connecting: [ParticipantID: PublisherSink] = [:]
    private let onActiveSpeaker: @Sendable (_ broadcast: String, _ participant: ParticipantID?) -> Void
    private let onPublisherLayers: @Sendable (PublisherLayers) -> Void
    let onMediaPublished: @Sendable (_ broadcast: String, _ participant: ParticipantID) -> Void
    let onMediaUnpublished: @Sendable (_ broadcast: String, _ participant: ParticipantID) -> Void

    /// Which simulcast layers one participant's track should be sent in, by rid.
    public struct PublisherLayers: Sendable, Equatable {
        public var broadcastID: String
        public var participantID: ParticipantID
        public var mid: String
        public var send: [String: Bool]

        public init(broadcastID: String, participantID: ParticipantID, mid: String, send: [String: Bool]) {
            self.broadcastID = broadcastID
            self.participantID = participantID
            self.mid = mid
            self.send = send
        }
    }

    /// The callbacks run on the transport's loop: `onActiveSpeaker` when a broadcast's speaker
    /// changes, `onPublisherLayers` when a publisher should turn simulcast layers on or off,
    /// `onMediaPublished` when a participant's media can be played, `onMediaUnpublished` when
    /// their publishing session ended without a newer one taking its place.
    public init(transport: any MediaTransport, logger: Logger, onActiveSpeaker: @escaping @Sendable (String, ParticipantID?) -> Void = { _, _ in },
                onPublisherLayers: @escaping @Sendable (PublisherLayers) -> Void = { _ in },
                onMediaPublished: @escaping @Sendable (String, ParticipantID) -> Void = { _, _ in },
                onMediaUnpublished: @escaping @Sendable (String, ParticipantID) -> Void = { _, _ in }) {
        self.transport = transport
        self.logger = logger
        self.onActiveSpeaker = onActiveSpeaker
        self.onPublisherLayers = onPublisherLayers
        self.onMediaPublished = onMediaPublished
        self.onMediaUnpublished = onMediaUnpublished
    }

    /// Opens a publishing session; its sections become producers of `participantID`, in the
    /// codecs `policy` allows. `onClose` runs on the transport's loop when the session ends.
    public func publish(broadcastID: String, participantID: ParticipantID, offer: SessionDescription, owner: SessionOwner, policy: CodecPolicy = .standard,
                        onClose: @escaping @Sendable () -> Void = {}) async throws -> (sessionID: SessionID, answer: String) {
        let server = self.transport
        let (id, answer) = try await server.open(offer: offer, tag: Self.publishTag(broadcastID), owner: owner, policy: policy,
                                                 intent: { _ in MediaIntent(receive: true) }) { answer in
            let sink = PublisherSink(participantID: participantID, answer: answer, router: self.router(broadcastID), clock: { server.now },
                                     onConnect: { sink in
                if self.connecting[participantID] === sink { self.connecting[participantID] = nil }
                self.onMediaPublished(broadcastID, participantID)
            }) { sink in
                // A session replaced by a newer publish closes after its successor took its place.
                if self.publishers[participantID] == sink.closedSessionID {
                    self.publishers[participantID] = nil
                    self.onMediaUnpublished(broadcastID, participantID)
                }
                if self.connecting[participantID] === sink { self.connecting[participantID] = nil }
                self.dropRouterIfUnused(broadcastID)
                onClose()
            }
            self.connecting[participantID] = sink
            return sink
        }
        let previous = try await server.loop.submit { () -> SessionID? in
            defer { self.publishers[participantID] = id }
            return self.publishers[participantID]
        }.get()
        // A participant publishes once: a new session replaces a stale one.
        if let previous { await server.close(sessionID: previous, reason: "replaced by a new publish") }
        logger.info("publishing", metadata: ["broadcast": "\(broadcastID)", "participant": "\(participantID)", "session": "\(id)"])
        return (id, answer.text)
    }

    /// The tag of publishing sessions of a router.
    public static func publishTag(_ broadcastID: String) -> String { "whip:\(broadcastID)" }

    /// The tag of playing sessions of a broadcast: only its WHEP endpoint may close them.
    public static func playTag(_ broadcastID: String) -> String { "whep:\(broadcastID)" }

    /// Who publishes media in a broadcast now.
    public func publishingParticipants(broadcastID: String) async -> Set<ParticipantID> {
        (try? await transport.loop.submit { self.routers[broadcastID]?.publishingParticipants ?? [] }.get()) ?? []
    }

    /// Ends a participant's publishing session; with `identity`, only if that identity opened it.
    public func unpublish(participantID: ParticipantID, identity: String? = nil) async -> Bool {
        guard let session = try? await transport.loop.submit({ self.publishers[participantID] }).get() else { return false }
        return await transport.close(sessionID: session, tag: nil, identity: identity, reason: "unpublished")
    }

    /// Opens a session that plays one participant's producers, each offered section getting
    /// the first unused producer of its kind, in the publisher's own codec.
    public func play(broadcastID: String, participantID: ParticipantID, offer: SessionDescription, owner: SessionOwner) async throws -> (sessionID: SessionID, answer: String) {
        let producers = try await transport.loop.submit {
            self.playableProducers(broadcastID: broadcastID, participantID: participantID).map { (id: $0.id, kind: $0.kind, codec: $0.media.codec) }
        }.get()
        guard !producers.isEmpty else { throw SFUError.notPublishing(participantID) }
        var unused = producers
        var assignment: [String: ProducerID] = [:]
        for section in offer.media {
            guard let mid = section.mid, let index = unused.firstIndex(where: { $0.kind == section.mediaKind }) else { continue }
            assignment[mid] = unused.remove(at: index).id
        }
        let codecs = producers.map(\.codec)
        let policy = CodecPolicy(
            audio: producers.filter { $0.kind == .audio }.map { CodecPolicy.Matcher(matching: $0.codec) },
            video: producers.filter { $0.kind == .video }.map { CodecPolicy.Matcher(matching: $0.codec) },
            feedback: CodecPolicy.standard.feedback, headerExtensions: CodecPolicy.standard.headerExtensions)
        let mapping = assignment
        let server = self.transport
        let (id, answer) = try await server.open(offer: offer, tag: Self.playTag(broadcastID), owner: owner, policy: policy, intent: { section in
            guard let mid = section.mid, mapping[mid] != nil else { return MediaIntent(receive: false) }
            return MediaIntent(receive: false, send: LocalStream(
                ssrc: UInt32.random(in: 1...UInt32.max), rtxSSRC: section.mediaKind == .video ? UInt32.random(in: 1...UInt32.max) : nil,
                cname: "tally-\(participantID)", streamID: participantID.rawValue, trackID: "\(participantID)-\(mid)"))
        }) { answer in
            SubscriberSink(answer: answer, producers: mapping, router: self.router(broadcastID), clock: { server.now },
                           protectionOverhead: server.protectionOverhead, logger: self.logger) {
                self.dropRouterIfUnused(broadcastID)
            }
        }
        logger.info("playing", metadata: ["broadcast": "\(broadcastID)", "participant": "\(participantID)", "session": "\(id)",
                                          "codecs": "\(codecs.map(\.name))"])
        return (id, answer.text)
    }

    /// A participant's producers in the router, or, while their publishing session is still
    /// connecting, the ones it will add: a player that starts with its publisher is bound to
    /// them now and gets media once it flows (the router keeps consumers by producer id).
    private func playableProducers(broadcastID: String, participantID: ParticipantID) -> [Producer] {
        let routed = routers[broadcastID]?.producers(ofParticipant: participantID) ?? []
        guard routed.isEmpty, let pending = connecting[participantID], pending.routerID == broadcastID else { return routed }
        return pending.producers
    }

    /// Starts handing one participant's packets to `onPacket` (on the transport's loop):
    /// what the compositor decodes, from the smallest simulcast layer that fills `tile` (nil:
    /// the best layer). A later call for the same participant replaces it.
    public func tap(broadcastID: String, participantID: ParticipantID, purpose: TapPurpose = .program, tile: TileSize? = nil,
                    onPacket: @escaping @Sendable (TappedPacket) -> Void) async {
        try? await transport.loop.submit {
            self.router(broadcastID).add(ProducerTap(participantID: participantID, purpose: purpose, tile: tile, onPacket: onPacket))
        }.get()
    }

    /// Participants publishing on this node from their own sessions, by router (broadcast).
    public func participantsPublishingHere() async -> [String: Set<ParticipantID>] {
        (try? await transport.loop.submit {
            self.routers.compactMapValues { router in
                let publishing = router.participantsPublishingHere
                return publishing.isEmpty ? nil : publishing
            }
        }.get()) ?? [:]
    }

    /// The participant's tile changed size: its tap moves to the layer that fills the new one.
    public func fitTap(broadcastID: String, participantID: ParticipantID, tile: TileSize?) async {
        let transport = self.transport
        try? await transport.loop.submit {
            self.routers[broadcastID]?.fit(tapOf: participantID, to: tile, now: transport.now)
            transport.flushOutgoing()
        }.get()
    }

    public func untap(broadcastID: String, participantID: ParticipantID, purpose: TapPurpose = .program) async {
        try? await transport.loop.submit {
            self.routers[broadcastID]?.removeTap(participant: participantID, purpose: purpose)
            self.dropRouterIfUnused(broadcastID)
        }.get()
    }

    /// A tap's decoder lost its place: PLI toward the participant's video (throttled).
    public func requestKeyframe(broadcastID: String, participantID: ParticipantID, purpose: TapPurpose = .program) {
        let transport = self.transport
        transport.loop.execute {
            self.routers[broadcastID]?.requestKeyframe(forTapOf: participantID, purpose: purpose, now: transport.now)
            transport.flushOutgoing()
        }
    }

    /// A broadcast's router, made on first use. On the transport's loop only.
    public func router(_ broadcastID: String) -> Router {
        transport.loop.preconditionInEventLoop()
        if let router = routers[broadcastID] { return router }
        let router = Router(id: broadcastID, logger: logger, onActiveSpeaker: { [logger, onActiveSpeaker] participant in
            logger.debug("active speaker", metadata: ["broadcast": "\(broadcastID)", "participant": "\(participant?.rawValue ?? "none")"])
            onActiveSpeaker(broadcastID, participant)
        }, onPublisherLayers: { [onPublisherLayers] producer, sending in
            onPublisherLayers(PublisherLayers(broadcastID: broadcastID, participantID: producer.participantID,
                                              mid: producer.media.mid, send: Dictionary(uniqueKeysWithValues: zip(producer.rids, sending))))
        })
        routers[broadcastID] = router
        if routerTicks == nil {
            let transport = self.transport
            routerTicks = transport.loop.scheduleRepeatedTask(initialDelay: Self.routerTickInterval, delay: Self.routerTickInterval) { _ in
                let now = transport.now
                for router in self.routers.values { router.tick(now: now) }
            }
        }
        return router
    }

    /// Forgets a broadcast's router once nothing is in it. On the transport's loop only.
    public func dropRouterIfUnused(_ broadcastID: String) {
        if routers[broadcastID]?.isEmpty == true { routers[broadcastID] = nil }
        if routers.isEmpty {
            routerTicks?.cancel()
            routerTicks = nil
        }
    }
}

/// The media plane's names, re-exported so that callers of the SFU need not import the transport's module.
public typealias SessionOwner = MediaPlane.SessionOwner
public typealias SessionID = MediaPlane.SessionID
public typealias MediaTransportError = MediaPlane.MediaTransportError
