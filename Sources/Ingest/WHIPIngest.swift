import Dispatch
import Logging
import MediaCodecs
import SDP
import SFU
import Synchronization

public enum WHIPIngestError: Error, Equatable, CustomStringConvertible {
    /// The stream key (or the on_publish webhook) said no, or the stream is stopped.
    case refused(String)
    /// The offer has nothing this endpoint can carry.
    case unsupportedOffer(String)

    public var description: String {
        switch self {
        case .refused(let reason): reason
        case .unsupportedOffer(let reason): reason
        }
    }
}

/// WHIP (RFC 9725) into ingest streams, as OBS 30 and later publish: the stream key is the
/// bearer token, the offer carries H.264 and Opus.
///
/// Each stream has its own SFU router (`ingest:{stream_id}`), so a WHIP publisher gets the
/// SFU's loss recovery (NACKs toward it, PLI when a picture is lost) and congestion feedback
/// like any studio guest. Its media is tapped off the router and converted (pictures passed
/// through, Opus to AAC) into the stream's outputs, the same as an RTMP or SRT publisher's.
public final class WHIPIngest: Sendable {
    /// H.264 in any profile (passthrough keeps whatever the encoder chose), non-interleaved;
    /// Opus. VP8 and the like would need a video transcode, which passthrough never does.
    public static let policy = CodecPolicy(
        audio: [.opus], video: [CodecPolicy.Matcher(name: "H264", clockRate: 90000, requiredParameters: ["packetization-mode": "1"])],
        feedback: CodecPolicy.standard.feedback, headerExtensions: CodecPolicy.standard.headerExtensions)

    private let hub: IngestHub
    private let sfu: SFU
    private let logger: Logger
    /// Live sessions by ID, with their router and the identity that opened them: what
    /// `DELETE` may end, and who may.
    private let sessions = Mutex<[SessionID: (router: String, identity: String)]>([:])
    private let publishes = Atomic<UInt64>(0)

    public init(hub: IngestHub, sfu: SFU, logger: Logger) {
        self.hub = hub
        self.sfu = sfu
        self.logger = logger
    }

    public static func routerID(streamID: String) -> String { "ingest:\(streamID)" }

    /// Checks the key, then answers the offer; the publisher replaces any earlier one of the
    /// same stream. Returns the session's ID, for its resource URL. `owner` names the stream
    /// key (never the key itself), so that only a holder of the same key may end it.
    public func publish(streamKey: String, offer: SessionDescription, owner: SessionOwner) async throws -> (streamID: String, sessionID: SessionID, answer: String) {
        let remoteAddress = owner.address
        guard offer.media.contains(where: { $0.mediaKind == .video && $0.codecs.contains(where: Self.policy.video[0].matches) }) else {
            throw WHIPIngestError.unsupportedOffer("the offer has no H.264 video (packetization-mode=1); passthrough carries H.264, so choose an H.264 encoder")
        }
        // The same application as `rtmp://HOST/live/KEY`, so keys and webhooks read alike.
        let request = IngestRequest(transport: .whip, app: "live", streamKey: streamKey, remoteAddress: remoteAddress)
        let (streamID, settings): (String, IngestSettings)
        switch await hub.check(request) {
        case .deny(let reason): throw WHIPIngestError.refused(reason)
        case .allow(let id, let allowed): (streamID, settings) = (id, allowed)
        }
        let session = SessionHandle(sfu: sfu)
        let attached = hub.attach(streamID: streamID, settings: settings, request: request) { reason in session.close(reason: reason) }
        guard case .success(let publisher) = attached else {
            if case .failure(let refusal) = attached { throw WHIPIngestError.refused(refusal.reason) }
            throw WHIPIngestError.refused("publish refused")
        }
        let routerID = Self.routerID(streamID: streamID)
        // Each publish is its own participant of the router, so a replaced session closing
        // late cannot take its successor's producers or tap with it.
        let participantID = ParticipantID("whip-\(publishes.add(1, ordering: .relaxed).newValue)")
        let sfu = self.sfu
        let feed = WHIPFeed(publisher: publisher, logger: logger) {
            sfu.requestKeyframe(broadcastID: routerID, participantID: participantID)
        }
        await sfu.tap(broadcastID: routerID, participantID: participantID) { packet in feed.push(packet) }
        let sessionID: SessionID
        let answer: String
        do {
            (sessionID, answer) = try await sfu.publish(broadcastID: routerID, participantID: participantID, offer: offer, owner: owner, policy: Self.policy) {
                if let id = session.id { self.sessions.withLock { _ = $0.removeValue(forKey: id) } }
                feed.finish()
                Task { await sfu.untap(broadcastID: routerID, participantID: participantID) }
            }
        } catch {
            await sfu.untap(broadcastID: routerID, participantID: participantID)
            publisher.detach(reason: "the offer could not be answered")
            throw error
        }
        sessions.withLock { $0[sessionID] = (routerID, owner.identity) }
        session.opened(sessionID)
        logger.info("whip ingest: publishing", metadata: ["stream": "\(streamID)", "session": "\(sessionID)", "from": "\(remoteAddress)"])
        return (streamID, sessionID, answer)
    }

    /// Ends a session (`DELETE` on its resource URL) for the identity that opened it: the
    /// stream shows its slate. False for an unknown session or another identity's.
    public func end(sessionID: SessionID, identity: String) async -> Bool {
        guard let session = sessions.withLock({ $0[sessionID] }), session.identity == identity else { return false }
        return await sfu.transport.close(sessionID: sessionID, tag: SFU.publishTag(session.router), identity: identity, reason: "ended by the publisher")
    }
}

/// The WebRTC session behind one publisher, which the stream may drop (replaced, stopped)
/// before its ID is even known.
private final class SessionHandle: Sendable {
    private let sfu: SFU
    private let state = Mutex<(id: SessionID?, closing: String?)>((nil, nil))

    init(sfu: SFU) {
        self.sfu = sfu
    }

    var id: SessionID? { state.withLock { $0.id } }

    func opened(_ id: SessionID) {
        let reason = state.withLock { state in
            state.id = id
            return state.closing
        }
        if let reason { close(id, reason: reason) }
    }

    func close(reason: String) {
        let id = state.withLock { state in
            state.closing = reason
            return state.id
        }
        if let id { close(id, reason: reason) }
    }

    private func close(_ id: SessionID, reason: String) {
        let server = sfu.transport
        Task { await server.close(sessionID: id, reason: reason) }
    }
}

/// One WHIP publisher's media on its way into its stream: packets come off the router's
/// loop and are converted on a queue of their own, so decoding Opus and encoding AAC never
/// holds up forwarding.
private final class WHIPFeed: Sendable {
    private let queue = DispatchQueue(label: "tally.ingest.whip")
    /// Touched only on `queue`.
    private let streams = Mutex(RTPElementaryStreams())
    private let publisher: IngestPublisher
    private let logger: Logger
    private let requestKeyframe: @Sendable () -> Void
    private let origin = ContinuousClock.now

    init(publisher: IngestPublisher, logger: Logger, requestKeyframe: @escaping @Sendable () -> Void) {
        self.publisher = publisher
        self.logger = logger
        self.requestKeyframe = requestKeyframe
    }

    func push(_ tapped: TappedPacket) {
        let elapsed = ContinuousClock.now - origin
        let arrival = elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000
        queue.async { self.convert(tapped, arrival: arrival) }
    }

    /// The session ended: once what is queued is through, the stream shows its slate.
    func finish() {
        queue.async { self.publisher.detach(reason: "the encoder disconnected") }
    }

    private func convert(_ tapped: TappedPacket, arrival: Int64) {
        let (outputs, keyframe, dropped, tracks) = streams.withLock { streams -> ([ElementaryOutput], Bool, Int, (ContainerWriter.VideoTrack?, ContainerWriter.AudioTrack?)) in
            var outputs: [ElementaryOutput] = []
            if tapped.kind == .video {
                outputs = streams.video(tapped.packet, arrival: arrival)
            } else {
                do {
                    outputs = try streams.audio(tapped.packet, arrival: arrival)
                } catch {
                    logger.warning("whip ingest: audio dropped", metadata: ["stream": "\(publisher.streamID)", "error": "\(error)"])
                }
            }
            return (outputs, streams.takeKeyframeRequest(), streams.takeDropped(), (streams.video, streams.audio))
        }
        if keyframe { requestKeyframe() }
        publisher.noteDropped(frames: dropped)
        for output in outputs {
            switch output {
            case .tracks: publisher.setTracks(video: tracks.0, audio: tracks.1)
            case .packet(let packet): publisher.send(packet)
            }
        }
    }
}
