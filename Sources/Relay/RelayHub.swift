import Crypto
import Logging
import Metrics
import NIOCore
import NIOPosix
import RelayWire
import RTCP
import RTP
import SDP
import SFU

/// Why a publisher's node refused to open a relay.
public enum RelayRefusal: Error, Equatable, CustomStringConvertible {
    case notPublishing
    case relayIDInUse
    case invalidRequest(String)
    case tooManyRelays(limit: Int)
    case notRunning

    public var description: String {
        switch self {
        case .notPublishing: "that participant publishes nothing on this node"
        case .relayIDInUse: "that relay id is in use on this node"
        case .invalidRequest(let reason): reason
        case .tooManyRelays(let limit): "this node already relays \(limit) participants"
        case .notRunning: "the relay port is not open"
        }
    }
}

/// The node-to-node media relay: one UDP port on the SFU's event loop, carrying a
/// participant's tracks from the node they publish on (an outlet there) to a node where
/// they are played or composed (an inlet here), sealed with keys both nodes derive from the
/// deployment's secret. Each hop repairs its own losses: the inlet NACKs gaps and asks for
/// keyframes, the outlet answers from the producer's cache and the publisher.
///
/// One relay per participant per node pair, however many players the inlet's node has.
/// `@unchecked Sendable`: every mutable field is touched only on the SFU's loop.
public final class RelayHub: @unchecked Sendable {
    /// How long each end waits before it gives a relay up.
    public struct Timeouts: Sendable {
        /// A relay nobody sent a keepalive for in this long is dropped by the publisher's node.
        public var outlet: Duration = .seconds(10)
        /// An inlet nothing here consumed for this long is closed.
        public var idleInlet: Duration = .seconds(10)

        public init() {}
    }
    static let keepaliveInterval: Duration = .seconds(1)
    static let tickInterval = TimeAmount.milliseconds(100)
    /// Each node relays at most this many participants out, and in.
    public static let maxRelays = 512

    private let sfu: SFU
    private let secret: SymmetricKey
    private let logger: Logger
    private let timeouts: Timeouts
    /// Tests drop the datagrams it names (true: drop) by kind and whether they resend lost
    /// media, as a lossy path would.
    var lossInjection: ((_ kind: RelayKind, _ retransmission: Bool) -> Bool)?
    private var loop: any EventLoop { sfu.transport.loop }
    private var channel: (any Channel)?
    private var ticks: RepeatedTask?
    private var flushScheduled = false
    private var outlets: [UInt32: RelayOutlet] = [:]
    private var inlets: [UInt32: RelayInlet] = [:]
    public private(set) var port = 0

    /// `secret`: the relay key every node of the deployment derives from the root secret.
    public init(sfu: SFU, secret: SymmetricKey, timeouts: Timeouts = Timeouts(), logger: Logger) {
        self.sfu = sfu
        self.secret = secret
        self.timeouts = timeouts
        self.logger = logger
    }

    /// Opens the relay port (0: any free port) on the SFU's loop; the port bound.
    public func start(host: String, port: Int) async throws -> Int {
        let channel = try await DatagramBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Reader(hub: self)) }
            }
            .bind(host: host, port: port).get()
        let bound = channel.localAddress?.port ?? port
        // The gauges from the start, so a node with no relay shows 0 rather than nothing.
        RelayMetrics.outlets.record(0)
        RelayMetrics.inlets.record(0)
        try await loop.submit {
            self.channel = channel
            self.port = bound
            self.ticks = self.loop.scheduleRepeatedTask(initialDelay: Self.tickInterval, delay: Self.tickInterval) { _ in self.tick() }
        }.get()
        return bound
    }

    public func stop() async {
        let channel = (try? await loop.submit { () -> (any Channel)? in
            self.ticks?.cancel()
            self.ticks = nil
            for inlet in self.inlets.values { self.closeInlet(inlet, tellPublisher: true) }
            for outlet in self.outlets.values { self.closeOutlet(outlet) }
            defer { self.channel = nil }
            return self.channel
        }.get()) ?? nil
        try? await channel?.close()
    }

    // MARK: The publisher's node

    /// Opens an outlet for `request` (a node that holds the relay secret asked): the
    /// participant's tracks as described for the asking node. Media flows once the asking
    /// node's first keepalive arrives, from the address it came from.
    public func openOutlet(_ request: RelayRequest) async throws -> RelayAnswer {
        guard let nonce = request.nonceBytes else { throw RelayRefusal.invalidRequest("nonce must be 16 bytes of base64") }
        guard request.relayID != 0 else { throw RelayRefusal.invalidRequest("relay_id must not be 0") }
        let participant = ParticipantID(request.participantID)
        return try await loop.submit { () throws -> RelayAnswer in
            guard self.channel != nil else { throw RelayRefusal.notRunning }
            guard self.outlets[request.relayID] == nil else { throw RelayRefusal.relayIDInUse }
            guard self.outlets.count < Self.maxRelays else { throw RelayRefusal.tooManyRelays(limit: Self.maxRelays) }
            let router = self.sfu.router(request.broadcastID)
            let producers = router.producers(ofParticipant: participant)
            guard !producers.isEmpty, producers.count <= Int(UInt8.max) else {
                self.sfu.dropRouterIfUnused(request.broadcastID)
                throw RelayRefusal.notPublishing
            }
            let outlet = RelayOutlet(hub: self, broadcastID: request.broadcastID, participantID: participant, relayID: request.relayID,
                                     cipher: RelayCipher(secret: self.secret, nonce: nonce, sending: .towardPlayer), router: router,
                                     producers: producers, now: self.sfu.transport.now)
            router.add(outlet, participant: participant)
            self.outlets[request.relayID] = outlet
            RelayMetrics.outlets.record(self.outlets.count)
            self.logger.info("relay out opened", metadata: ["broadcast": "\(request.broadcastID)", "participant": "\(participant)", "relay": "\(request.relayID)"])
            return RelayAnswer(port: self.port, tracks: producers.map { RelayTrack($0.media) })
        }.get()
    }

    private func closeOutlet(_ outlet: RelayOutlet) {
        guard outlets[outlet.relayID] === outlet else { return }
        outlets[outlet.relayID] = nil
        outlet.router.remove(outlet, participant: outlet.participantID)
        sfu.dropRouterIfUnused(outlet.broadcastID)
        RelayMetrics.outlets.record(outlets.count)
        logger.info("relay out closed", metadata: ["broadcast": "\(outlet.broadcastID)", "participant": "\(outlet.participantID)", "relay": "\(outlet.relayID)"])
    }

    /// Relays out and in of this hub; tests run two hubs in one process, where the
    /// process-wide gauges cannot tell them apart.
    func counts() async -> (outlets: Int, inlets: Int) {
        (try? await loop.submit { (self.outlets.count, self.inlets.count) }.get()) ?? (0, 0)
    }

    // MARK: The player's node

    /// Whether a relay brings `participant` of `broadcast` here already.
    public func isRelaying(broadcastID: String, participantID: ParticipantID) async -> Bool {
        (try? await loop.submit { self.inlets.values.contains { $0.source.broadcastID == broadcastID && $0.source.participantID == participantID } }.get()) ?? false
    }

    /// A relay id free on this node.
    func freeRelayID() async -> UInt32 {
        (try? await loop.submit { () -> UInt32 in
            var id: UInt32
            repeat { id = UInt32.random(in: 1...UInt32.max) } while self.inlets[id] != nil
            return id
        }.get()) ?? UInt32.random(in: 1...UInt32.max)
    }

    /// Brings a participant's tracks, as `answer` describes them, into the broadcast's router
    /// here, fed from `publisher` (the other node's relay address). False when the
    /// participant now publishes here or a relay already brings them.
    public func openInlet(broadcastID: String, participantID: ParticipantID, relayID: UInt32, nonce: [UInt8], answer: RelayAnswer,
                   publisher: SocketAddress) async throws -> Bool {
        let media = try answer.tracks.map { track throws -> NegotiatedMedia in
            guard let media = track.media else { throw RelayRefusal.invalidRequest("the publisher's node described a track no producer can read") }
            return media
        }
        guard !media.isEmpty, media.count <= Int(UInt8.max) else { throw RelayRefusal.invalidRequest("the publisher's node described no tracks") }
        return try await loop.submit { () throws -> Bool in
            guard self.channel != nil else { throw RelayRefusal.notRunning }
            guard !self.inlets.values.contains(where: { $0.source.broadcastID == broadcastID && $0.source.participantID == participantID }) else { return false }
            guard self.inlets.count < Self.maxRelays else { throw RelayRefusal.tooManyRelays(limit: Self.maxRelays) }
            var inlet: RelayInlet?
            guard let source = self.sfu.openRelayedSource(broadcastID: broadcastID, participantID: participantID, media: media, onKeyframeRequest: { track, layer in
                inlet?.requestKeyframe(track: track, layer: layer)
            }, onLayers: { track, layers in
                inlet?.need(layers, of: track, now: self.sfu.transport.now)
            }) else { return false }
            let opened = RelayInlet(hub: self, relayID: relayID, cipher: RelayCipher(secret: self.secret, nonce: nonce, sending: .towardPublisher),
                                    source: source, publisher: publisher, now: self.sfu.transport.now)
            inlet = opened
            self.inlets[relayID] = opened
            RelayMetrics.inlets.record(self.inlets.count)
            opened.sendKeepalive(now: self.sfu.transport.now)
            self.logger.info("relay in opened", metadata: ["broadcast": "\(broadcastID)", "participant": "\(participantID)", "relay": "\(relayID)",
                                                           "from": "\(publisher)"])
            return true
        }.get()
    }

    private func closeInlet(_ inlet: RelayInlet, tellPublisher: Bool) {
        guard inlets[inlet.relayID] === inlet else { return }
        if tellPublisher { inlet.send(kind: .close, payload: []) }
        inlets[inlet.relayID] = nil
        sfu.closeRelayedSource(inlet.source)
        RelayMetrics.inlets.record(inlets.count)
        logger.info("relay in closed", metadata: ["broadcast": "\(inlet.source.broadcastID)", "participant": "\(inlet.source.participantID)",
                                                  "relay": "\(inlet.relayID)"])
    }

    // MARK: On the loop

    fileprivate func receive(_ bytes: [UInt8], from address: SocketAddress) {
        let header: RelayHeader
        do {
            header = try RelayHeader.parse(bytes)
        } catch {
            RelayMetrics.refused.increment()
            return
        }
        let now = sfu.transport.now
        switch header.kind {
        case .media:
            guard let inlet = inlets[header.relayID], address == inlet.publisher else { return RelayMetrics.refused.increment() }
            inlet.receive(bytes, now: now)
        case .feedback, .keepalive, .close:
            guard let outlet = outlets[header.relayID] else { return RelayMetrics.refused.increment() }
            guard let kind = outlet.receive(bytes, from: address, now: now) else { return }
            if kind == .close { closeOutlet(outlet) }
        }
    }

    /// Queues a datagram; everything queued in one pass of the loop leaves in one flush.
    fileprivate func send(_ datagram: [UInt8], to address: SocketAddress, retransmission: Bool = false) {
        guard let channel else { return }
        if let lossInjection, let kind = RelayKind(rawValue: datagram[1] & 0x0F), lossInjection(kind, retransmission) { return }
        var buffer = channel.allocator.buffer(capacity: datagram.count)
        buffer.writeBytes(datagram)
        channel.write(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
        if !flushScheduled {
            flushScheduled = true
            loop.execute {
                self.flushScheduled = false
                self.channel?.flush()
            }
        }
    }

    fileprivate func readComplete() {
        sfu.transport.flushOutgoing()
    }

    private func tick() {
        let now = sfu.transport.now
        for outlet in outlets.values where now - outlet.lastHeard > timeouts.outlet {
            logger.info("relay out timed out: no keepalive", metadata: ["relay": "\(outlet.relayID)"])
            closeOutlet(outlet)
        }
        for inlet in inlets.values {
            if inlet.source.isConsumed {
                inlet.lastConsumed = now
            } else if now - inlet.lastConsumed > timeouts.idleInlet {
                closeInlet(inlet, tellPublisher: true)
                continue
            }
            inlet.tick(now: now)
        }
        sfu.transport.flushOutgoing()
    }

    private final class Reader: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let hub: RelayHub

        init(hub: RelayHub) {
            self.hub = hub
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            hub.receive(Array(envelope.data.readableBytesView), from: envelope.remoteAddress)
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            hub.readComplete()
        }
    }

    // MARK: The two ends

    /// The publisher's end: takes the participant's packets off the router as they arrive and
    /// seals each for the player's node; answers its NACKs from the producers' caches and
    /// passes its keyframe requests to the publisher.
    final class RelayOutlet: ProducerOutlet {
        unowned let hub: RelayHub
        let broadcastID: String
        let participantID: ParticipantID
        let relayID: UInt32
        let router: Router
        var cipher: RelayCipher
        /// Track index by producer id: a participant who publishes again (a reconnect) gets
        /// new producers under the same ids, and the relay carries those on.
        private let tracks: [ProducerID: UInt8]
        /// Where the player's node's keepalives come from: nothing is sent before the first.
        private var player: SocketAddress?
        /// The layers the player's node needs, by track (a bit per layer); absent: every layer.
        private var layerMasks: [UInt8: UInt8] = [:]
        var lastHeard: Duration

        init(hub: RelayHub, broadcastID: String, participantID: ParticipantID, relayID: UInt32, cipher: RelayCipher, router: Router,
             producers: [Producer], now: Duration) {
            self.hub = hub
            self.broadcastID = broadcastID
            self.participantID = participantID
            self.relayID = relayID
            self.cipher = cipher
            self.router = router
            tracks = Dictionary(uniqueKeysWithValues: producers.enumerated().map { ($1.id, UInt8($0)) })
            lastHeard = now
        }

        func deliver(_ arrival: borrowing Producer.Arrival, from producer: Producer, now: Duration) {
            guard let player, let track = tracks[producer.id] else { return }
            if let mask = layerMasks[track], arrival.layer < 8, mask & (1 << UInt8(arrival.layer)) == 0 { return }
            send(arrival.packet.bytes, track: track, layer: UInt8(truncatingIfNeeded: arrival.layer), to: player)
        }

        func wantedLayer(of producer: Producer) -> Int? {
            guard let track = tracks[producer.id], let mask = layerMasks[track] else { return nil }
            return (0..<8).last { mask & (1 << UInt8($0)) != 0 } ?? 0
        }

        private func send(_ packet: [UInt8], track: UInt8, layer: UInt8, to player: SocketAddress, retransmission: Bool = false) {
            guard let datagram = try? cipher.seal(kind: .media, track: track, layer: layer, relayID: relayID, payload: packet) else { return }
            RelayMetrics.relayedOut.increment()
            hub.send(datagram, to: player, retransmission: retransmission)
        }

        /// Takes a datagram from the player's node; its kind once it authenticates.
        func receive(_ datagram: [UInt8], from address: SocketAddress, now: Duration) -> RelayKind? {
            guard let (header, payload) = try? cipher.open(datagram, relayID: relayID) else {
                RelayMetrics.refused.increment()
                return nil
            }
            // Only a holder of the relay's key gets here: its address is where media goes.
            player = address
            lastHeard = now
            switch header.kind {
            case .feedback:
                for packet in (try? RTCPCompound.parse(payload)) ?? [] { handle(packet, now: now) }
            case .keepalive:
                layerMasks = RelayLayers.decode(payload).filter { tracks.values.contains($0.key) }
            case .media, .close:
                break
            }
            return header.kind
        }

        private func handle(_ packet: RTCPPacket, now: Duration) {
            switch packet {
            case .nack(let nack):
                guard let player, let (producer, layer) = layer(of: nack.mediaSSRC), let track = tracks[producer.id] else { return }
                for sequence in nack.lostSequenceNumbers {
                    guard let cached = producer.recentPacket(layer: layer, sequence: sequence) else { continue }
                    RelayMetrics.retransmitted.increment()
                    send(cached.bytes, track: track, layer: UInt8(truncatingIfNeeded: layer), to: player, retransmission: true)
                }
            case .pictureLossIndication(_, let mediaSSRC):
                guard let (producer, layer) = layer(of: mediaSSRC) else { return }
                router.requestKeyframe(producer: producer.id, layer: layer, now: now)
            default:
                break
            }
        }

        /// The relayed track and layer an SSRC belongs to, among the participant's producers now.
        private func layer(of ssrc: UInt32) -> (Producer, Int)? {
            for producer in router.producers(ofParticipant: participantID) where tracks[producer.id] != nil {
                if let layer = producer.layer(ofSSRC: ssrc) { return (producer, layer) }
            }
            return nil
        }
    }

    /// The player's end: opens the publisher's node's datagrams into the relayed source's
    /// producers, NACKs what the hop lost, and keeps the relay alive while anything here
    /// consumes it.
    final class RelayInlet {
        unowned let hub: RelayHub
        let relayID: UInt32
        var cipher: RelayCipher
        let source: RelayedSource
        let publisher: SocketAddress
        var lastConsumed: Duration
        private var lastKeepalive: Duration
        /// The layers players here need, by track, told to the publisher's node in every keepalive.
        private var layerMasks: [UInt8: UInt8] = [:]

        init(hub: RelayHub, relayID: UInt32, cipher: RelayCipher, source: RelayedSource, publisher: SocketAddress, now: Duration) {
            self.hub = hub
            self.relayID = relayID
            self.cipher = cipher
            self.source = source
            self.publisher = publisher
            lastConsumed = now
            lastKeepalive = now
        }

        func receive(_ datagram: [UInt8], now: Duration) {
            guard let (header, payload) = try? cipher.open(datagram, relayID: relayID), let packet = try? RTPPacket(payload) else {
                RelayMetrics.refused.increment()
                return
            }
            RelayMetrics.relayedIn.increment()
            source.receive(packet, track: Int(header.track), layer: Int(header.layer), now: now)
        }

        func tick(now: Duration) {
            let nacks = source.pendingNACKs(now: now).map { RTCPPacket.nack(GenericNACK(senderSSRC: 1, mediaSSRC: $0.ssrc, lost: $0.sequences)) }
            if !nacks.isEmpty { send(kind: .feedback, payload: RTCPCompound.serialize(nacks)) }
            if now - lastKeepalive >= RelayHub.keepaliveInterval { sendKeepalive(now: now) }
        }

        func sendKeepalive(now: Duration) {
            lastKeepalive = now
            send(kind: .keepalive, payload: RelayLayers.encode(layerMasks))
        }

        /// The players here need `layers` (lowest first) of track `track`: the publisher's node
        /// hears it at once, and relays only those.
        func need(_ layers: [Bool], of track: Int, now: Duration) {
            guard let index = UInt8(exactly: track) else { return }
            layerMasks[index] = RelayLayers.mask(layers)
            sendKeepalive(now: now)
        }

        func requestKeyframe(track: Int, layer: Int) {
            guard source.producers.indices.contains(track), let ssrc = source.producers[track].ssrc(ofLayer: layer) else { return }
            send(kind: .feedback, payload: RTCPCompound.serialize([.pictureLossIndication(senderSSRC: 1, mediaSSRC: ssrc)]))
        }

        func send(kind: RelayKind, payload: [UInt8]) {
            guard let datagram = try? cipher.seal(kind: kind, relayID: relayID, payload: payload) else { return }
            hub.send(datagram, to: publisher)
        }
    }
}

enum RelayMetrics {
    static let relayedOut = Counter(label: "tally_relay_packets_sent_total")
    static let relayedIn = Counter(label: "tally_relay_packets_received_total")
    static let retransmitted = Counter(label: "tally_relay_retransmissions_total")
    static let refused = Counter(label: "tally_relay_datagrams_refused_total")
    static let outlets = Gauge(label: "tally_relay_outlets")
    static let inlets = Gauge(label: "tally_relay_inlets")
}
