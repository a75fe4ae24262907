import MediaPlane
import RTP
import SDP

/// A participant who publishes on another node, brought into this node's router by a relay:
/// its tracks become producers here with the publisher's own SSRCs, payload types and
/// layers, so local players and the program's tap consume them like a local publisher's.
/// Gaps on the relay hop are NACKed back to the publishing node; keyframe requests go there too.
///
/// Not thread-safe: used on the transport's loop only.
public final class RelayedSource {
    public let broadcastID: String
    public let participantID: ParticipantID
    /// By the relay's track index.
    public let producers: [Producer]
    private let router: Router
    private let transport: any MediaTransport

    init(broadcastID: String, participantID: ParticipantID, media: [NegotiatedMedia], router: Router, transport: any MediaTransport) {
        self.broadcastID = broadcastID
        self.participantID = participantID
        producers = media.map { Producer(id: ProducerID(participant: participantID, mid: $0.mid), media: $0) }
        self.router = router
        self.transport = transport
    }

    /// Routes one relayed packet of track `track`, layer `layer`; false when it was not
    /// taken (an unknown track, a duplicate, or a local publisher took the producer's place).
    /// The caller flushes the transport after a batch.
    @discardableResult
    public func receive(_ packet: RTPPacket, track: Int, layer: Int, now: Duration) -> Bool {
        guard producers.indices.contains(track) else { return false }
        let producer = producers[track]
        guard router.producer(producer.id) === producer, let arrival = producer.receive(packet, layer: layer, now: now) else { return false }
        router.route(arrival, from: producer, transport: transport, now: now)
        return true
    }

    /// Sequence numbers lost on the relay hop, to ask the publishing node for again.
    public func pendingNACKs(now: Duration) -> [(ssrc: UInt32, sequences: [UInt16])] {
        producers.flatMap { $0.pendingNACKs(now: now) }
    }

    /// Whether any player, the program or a further relay takes this participant's media here.
    public var isConsumed: Bool { router.isConsumed(participant: participantID) }
}

extension SFU {
    /// Adds a remote participant's tracks (as its node described them) to the broadcast's
    /// router; `onKeyframeRequest` gets the track index and layer when a player here needs
    /// a keyframe, `onLayers` a track index and the layers players here need (lowest first)
    /// when that changes. Nil when the participant publishes on this node: local media wins.
    /// On the transport's loop only.
    public func openRelayedSource(broadcastID: String, participantID: ParticipantID, media: [NegotiatedMedia],
                                  onKeyframeRequest: @escaping (_ track: Int, _ layer: Int) -> Void,
                                  onLayers: @escaping (_ track: Int, _ layers: [Bool]) -> Void) -> RelayedSource? {
        transport.loop.preconditionInEventLoop()
        let router = self.router(broadcastID)
        guard router.producers(ofParticipant: participantID).isEmpty, connecting[participantID] == nil else { return nil }
        let source = RelayedSource(broadcastID: broadcastID, participantID: participantID, media: media, router: router, transport: transport)
        for (index, producer) in source.producers.enumerated() {
            router.addRelayed(producer, onKeyframeRequest: { layer in onKeyframeRequest(index, layer) },
                              onLayers: { layers in onLayers(index, layers) })
        }
        return source
    }

    /// Takes a relayed source's producers out of its router. On the transport's loop only.
    public func closeRelayedSource(_ source: RelayedSource) {
        transport.loop.preconditionInEventLoop()
        guard let router = routers[source.broadcastID] else { return }
        for producer in source.producers where router.producer(producer.id) === producer { router.remove(producer: producer.id) }
        dropRouterIfUnused(source.broadcastID)
    }

    /// Broadcasts and participants the program taps here whose media is on no local producer.
    public func tappedElsewhere() async -> [(broadcastID: String, participantID: ParticipantID)] {
        (try? await transport.loop.submit {
            self.routers.flatMap { id, router in router.tappedWithoutProducers.map { (id, $0) } }
        }.get()) ?? []
    }
}
