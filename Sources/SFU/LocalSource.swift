import RTP
import SDP
import MediaPlane
import Synchronization

/// Media made inside the server (the program) published into a router like a participant's
/// tracks, so WebRTC players get it through consumers: NACKs answered from the producer's
/// cache, congestion control and keyframe requests as for any publisher. Send from any
/// thread; packets are numbered and routed on the transport's loop.
///
/// `@unchecked Sendable`: the router and the per-track state are touched only on the loop.
public final class LocalSource: @unchecked Sendable {
    public struct Track: Sendable {
        public var kind: MediaKind
        public var codec: RTPCodec

        public init(kind: MediaKind, codec: RTPCodec) {
            self.kind = kind
            self.codec = codec
        }
    }

    /// Per track, on the loop: the producer and the next sequence number.
    private final class Outgoing {
        let producer: Producer
        var sequence = UInt16.random(in: 0...UInt16.max)

        init(producer: Producer) {
            self.producer = producer
        }
    }

    private let server: any MediaTransport
    private let router: Router
    private let outgoing: [MediaKind: Outgoing]
    private let watched = Atomic<Bool>(false)

    /// Whether any track had a consumer (or a relay) when a packet was last sent: work done
    /// only for players (transcoding their sound) can pause while nobody plays.
    public var isWatched: Bool { watched.load(ordering: .relaxed) }

    init(server: any MediaTransport, router: Router, participantID: ParticipantID, tracks: [Track]) {
        self.server = server
        self.router = router
        var outgoing: [MediaKind: Outgoing] = [:]
        for (index, track) in tracks.enumerated() {
            let ssrc = UInt32.random(in: 1...UInt32.max)
            let media = NegotiatedMedia(mid: String(index), kind: track.kind, direction: .recvonly, codec: track.codec, retransmission: nil,
                                        headerExtensions: [], remoteSSRCs: [SSRCDescription(ssrc: ssrc)], remoteRetransmissionPairs: [],
                                        remoteRIDs: [], localStream: nil)
            let entry = Outgoing(producer: Producer(id: ProducerID(participant: participantID, mid: String(index)), media: media))
            outgoing[track.kind] = entry
        }
        self.outgoing = outgoing
    }

    var producers: [Producer] { outgoing.values.map(\.producer) }

    /// One RTP payload of the `kind` track, stamped in the track's clock.
    public func send(kind: MediaKind, payload: [UInt8], timestamp: UInt32, marker: Bool) {
        guard let track = outgoing[kind] else { return }
        let server = self.server
        let router = self.router
        server.loop.execute {
            let ssrc = track.producer.media.remoteSSRCs[0].ssrc
            var builder = RTPPacketBuilder(payloadType: track.producer.media.codec.payloadType, sequenceNumber: track.sequence, timestamp: timestamp, ssrc: ssrc)
            builder.marker = marker
            builder.payload = payload
            track.sequence &+= 1
            guard let packet = try? RTPPacket(builder.serialize()) else { return }
            let now = server.now
            guard let arrival = track.producer.receive(packet, now: now) else { return }
            router.route(arrival, from: track.producer, transport: server, now: now)
            server.flushOutgoing()
            // A relay to another node's players counts as watching.
            self.watched.store(router.isConsumed(participant: track.producer.participantID), ordering: .relaxed)
        }
    }
}

extension SFU {
    /// Publishes `tracks` made inside the server as `participantID` in the broadcast's
    /// router; `onKeyframeRequest` runs (on the loop) when a player needs a keyframe.
    public func openLocalSource(broadcastID: String, participantID: ParticipantID, tracks: [LocalSource.Track],
                                onKeyframeRequest: @escaping @Sendable () -> Void) async throws -> LocalSource {
        try await transport.loop.submit {
            let router = self.router(broadcastID)
            let source = LocalSource(server: self.transport, router: router, participantID: participantID, tracks: tracks)
            for producer in source.producers { router.add(producer, onKeyframeRequest: { _ in onKeyframeRequest() }) }
            self.onMediaPublished(broadcastID, participantID)
            return source
        }.get()
    }

    /// Takes a local source's producers out of the router and closes the sessions playing
    /// them: with the source gone there is nothing left to play.
    public func closeLocalSource(broadcastID: String, participantID: ParticipantID) async {
        await transport.close(tag: Self.playTag(broadcastID), reason: "the source ended")
        try? await transport.loop.submit {
            guard let router = self.routers[broadcastID] else { return }
            for producer in router.producers(ofParticipant: participantID) { router.remove(producer: producer.id) }
            self.onMediaUnpublished(broadcastID, participantID)
            self.dropRouterIfUnused(broadcastID)
        }.get()
    }
}
