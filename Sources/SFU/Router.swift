import Logging
import RTCP
import RTP
import MediaPlane

/// Where a producer's packets come from: a session, which keyframe requests reach as PLI
/// on its transport, or something inside the server (the program), told directly.
public enum ProducerSource {
    case session(any MediaSession, transport: any MediaTransport)
    /// `onKeyframeRequest` is told the layer.
    case local(onKeyframeRequest: (Int) -> Void)
    /// Relayed from the node the participant publishes on; keyframe requests go there, with
    /// the layer, and so does which layers this node's players need (`onLayers`, lowest
    /// first): that node relays only those, and decides what the publisher sends.
    case relayed(onKeyframeRequest: (Int) -> Void, onLayers: ([Bool]) -> Void)
}

/// Takes a participant's packets as they arrive, before any consumer rewrites them: a relay
/// carrying them to another node. Called on the router's loop.
public protocol ProducerOutlet: AnyObject {
    func deliver(_ arrival: borrowing Producer.Arrival, from producer: Producer, now: Duration)
    /// The highest layer of `producer` the other node's players need; nil: every layer.
    func wantedLayer(of producer: Producer) -> Int?
}

/// One broadcast's forwarding plane (mediasoup's Router): its producers, and the consumers
/// each feeds. Lives on the WebRTC transport's event loop; no locks, no tasks per packet.
public final class Router {
    public let id: String
    private var producers: [ProducerID: (producer: Producer, source: ProducerSource)] = [:]
    /// A consumer with the transport it sends on. Kept by value, so a producer's bindings lie
    /// side by side in one array and the fan-out walks them without an object per binding.
    private struct Binding {
        let consumer: Consumer
        let subscriber: any MediaSession
        let sink: SubscriberSink
    }

    private var consumers: [ProducerID: [Binding]] = [:]
    /// What each copy of one fan-out came to, by binding: reused from packet to packet.
    private struct Outcome {
        var sent = false
        var keyframeNeeded: Int?
        /// The layer the consumer left, when this copy switched it.
        var switchedFrom: Int??
    }
    private var outcomes: [Outcome] = []
    private var lastKeyframeRequest: [LayerKey: Duration] = [:]
    private struct LayerKey: Hashable {
        let producer: ProducerID
        let layer: Int
    }
    /// Keyframe requests per producer layer are at most this frequent.
    public var keyframeRequestInterval: Duration = .milliseconds(300)
    private var speakers = ActiveSpeakerObserver<ProducerID>()
    private var lastSpeakerEvaluation: Duration?
    private var layerPolicy = PublisherLayerPolicy<ProducerID>()
    private var lastLayerEvaluation: Duration?
    /// Called with the speaking participant (nil: nobody) when it changes.
    private let onActiveSpeaker: (ParticipantID?) -> Void
    /// Called with a producer and the layers its publisher should send (lowest first) when
    /// that changes: the studio turns the browser's encodings on and off to match.
    private let onPublisherLayers: (Producer, [Bool]) -> Void
    private let logger: Logger

    public init(id: String, logger: Logger = Logger(label: "tally.sfu"), onActiveSpeaker: @escaping (ParticipantID?) -> Void = { _ in },
                onPublisherLayers: @escaping (Producer, [Bool]) -> Void = { _, _ in }) {
        self.id = id
        self.logger = logger
        self.onActiveSpeaker = onActiveSpeaker
        self.onPublisherLayers = onPublisherLayers
    }

    public func recordAudioLevel(producer id: ProducerID, level: UInt8, now: Duration) {
        speakers.record(producer: id, level: level, at: now)
    }

    /// The router's own clock, ticked by the SFU on the transport's loop: the active
    /// speaker and the publishers' layers are re-evaluated on it, whoever publishes.
    public func tick(now: Duration) {
        evaluateSpeaker(now: now)
        evaluatePublisherLayers(now: now)
    }

    /// Re-evaluates the active speaker at most every 300 ms.
    private func evaluateSpeaker(now: Duration) {
        if let last = lastSpeakerEvaluation, now - last < .milliseconds(300) { return }
        lastSpeakerEvaluation = now
        if case .some(let producer) = speakers.evaluate(now: now) {
            onActiveSpeaker(producer.map(\.participant))
        }
    }

    /// Works out, at most every 500 ms, which simulcast layers each publisher should send:
    /// the highest any unpaused consumer here, the program's tap or a relay onwards wants,
    /// and those below it. For
    /// a relayed producer the answer goes back over the relay (its layers are paused there,
    /// like a publisher's here), not to a browser.
    private func evaluatePublisherLayers(now: Duration) {
        if let last = lastLayerEvaluation, now - last < .milliseconds(500) { return }
        lastLayerEvaluation = now
        for (id, entry) in producers where entry.producer.isSimulcast {
            let producer = entry.producer
            var wanted = (consumers[id] ?? []).filter { !$0.consumer.isPaused }.map { $0.consumer.wantedLayer(best: producer.layers.count - 1) }
            for relay in outlets[producer.participantID] ?? [] { wanted.append(relay.wantedLayer(of: producer) ?? producer.layers.count - 1) }
            for tap in (taps[producer.participantID] ?? [:]).values { wanted.append(tap.wantedLayer(of: producer)) }
            guard let sending = layerPolicy.evaluate(producer: id, measured: producer.layers.map { $0.packets > 0 }, wanted: wanted, now: now) else { continue }
            producer.layersSentByPublisher = sending
            logger.debug("publisher layers", metadata: ["producer": "\(id)", "send": "\(zip(producer.rids, sending).map { "\($0)=\($1)" })"])
            if case .relayed(_, let onLayers) = entry.source {
                onLayers(sending)
            } else {
                onPublisherLayers(producer, sending)
            }
        }
    }

    public var isEmpty: Bool { producers.isEmpty && consumers.values.allSatisfy(\.isEmpty) && taps.isEmpty && outlets.isEmpty }

    /// Relays to other nodes, by the participant whose tracks they carry.
    private var outlets: [ParticipantID: [any ProducerOutlet]] = [:]

    public func add(_ outlet: any ProducerOutlet, participant: ParticipantID) {
        outlets[participant, default: []].append(outlet)
    }

    public func remove(_ outlet: any ProducerOutlet, participant: ParticipantID) {
        outlets[participant]?.removeAll { $0 === outlet }
        if outlets[participant]?.isEmpty == true { outlets[participant] = nil }
    }

    /// Whether anything here takes a participant's media: a consumer of one of its tracks,
    /// the program's tap or a relay onwards.
    public func isConsumed(participant: ParticipantID) -> Bool {
        taps[participant] != nil || outlets[participant] != nil
            || producers.keys.contains { $0.participant == participant && hasConsumers(of: $0) }
    }

    /// Participants the program taps here who publish nothing here: their media is on
    /// another node. (The server copies only participants who publish on its own node.)
    public var tappedWithoutProducers: [ParticipantID] {
        let publishing = publishingParticipants
        return taps.filter { $0.value[.program] != nil && !publishing.contains($0.key) }.map(\.key)
    }

    /// Participants who publish here from their own session (not a relay from another node,
    /// not media made in the server).
    public var participantsPublishingHere: Set<ParticipantID> {
        Set(producers.values.compactMap { entry in
            if case .session = entry.source { entry.producer.participantID } else { nil }
        })
    }

    /// Internal consumers by participant and purpose: the compositor's view of the stage, and
    /// the server's copies of each participant.
    private var taps: [ParticipantID: [TapPurpose: ProducerTap]] = [:]

    public func add(_ tap: ProducerTap) {
        taps[tap.participantID, default: [:]][tap.purpose] = tap
    }

    public func removeTap(participant: ParticipantID, purpose: TapPurpose = .program) {
        taps[participant]?[purpose] = nil
        if taps[participant]?.isEmpty == true { taps[participant] = nil }
    }

    /// Asks for a keyframe on the layer a participant's tap follows: its decoder lost its place.
    public func requestKeyframe(forTapOf participant: ParticipantID, purpose: TapPurpose = .program, now: Duration) {
        guard let tap = taps[participant]?[purpose] else { return }
        for producer in producers(ofParticipant: participant) where producer.kind == .video {
            requestKeyframe(producer: producer.id, layer: tap.currentLayer[ObjectIdentifier(producer)] ?? tap.wantedLayer(of: producer), now: now)
        }
    }

    /// Moves a tap to a new tile: it follows the layer that fills it from that layer's next
    /// keyframe, asked for now.
    public func fit(tapOf participant: ParticipantID, to tile: TileSize?, now: Duration) {
        guard let tap = taps[participant]?[.program], tap.tile != tile else { return }
        tap.tile = tile
        for producer in producers(ofParticipant: participant) where producer.kind == .video && producer.isSimulcast {
            guard let target = tap.targetLayer(of: producer, now: now),
                  target != tap.currentLayer[ObjectIdentifier(producer)] else { continue }
            requestKeyframe(producer: producer.id, layer: target, now: now)
        }
    }

    public func producer(_ id: ProducerID) -> Producer? { producers[id]?.producer }

    /// The publisher's last sender report for the layer a consumer currently forwards.
    public func publisherReport(for consumer: Consumer) -> (ntp: UInt64, rtp: UInt32, arrival: Duration)? {
        guard let layer = consumer.currentLayer, let producer = producers[consumer.producerID]?.producer,
              producer.layers.indices.contains(layer) else { return nil }
        return producer.layers[layer].senderReport
    }

    /// Participants with at least one producer here.
    public var publishingParticipants: Set<ParticipantID> {
        Set(producers.keys.map(\.participant))
    }

    /// The producers of one participant, in mid order.
    public func producers(ofParticipant participant: ParticipantID) -> [Producer] {
        producers.values.map(\.producer).filter { $0.participantID == participant }.sorted { $0.id < $1.id }
    }

    public func add(_ producer: Producer, publisher: any MediaSession, transport: any MediaTransport) {
        producers[producer.id] = (producer, .session(publisher, transport: transport))
    }

    /// A producer fed from inside the server (see `LocalSource`).
    public func add(_ producer: Producer, onKeyframeRequest: @escaping (Int) -> Void) {
        producers[producer.id] = (producer, .local(onKeyframeRequest: onKeyframeRequest))
    }

    /// A producer relayed from another node (see `RelayedSource`).
    public func addRelayed(_ producer: Producer, onKeyframeRequest: @escaping (Int) -> Void, onLayers: @escaping ([Bool]) -> Void) {
        producers[producer.id] = (producer, .relayed(onKeyframeRequest: onKeyframeRequest, onLayers: onLayers))
    }

    public func remove(producer id: ProducerID) {
        producers[id] = nil
        speakers.remove(producer: id)
        layerPolicy.remove(producer: id)
    }

    public func add(_ consumer: Consumer, subscriber: any MediaSession, sink: SubscriberSink, now: Duration) {
        consumers[consumer.producerID, default: []].append(Binding(consumer: consumer, subscriber: subscriber, sink: sink))
        if let producer = producers[consumer.producerID]?.producer {
            let best = producer.activeLayers(now: now).last ?? (producer.layers.count - 1)
            requestKeyframe(producer: consumer.producerID, layer: consumer.wantedLayer(best: best), now: now)
        }
    }

    public func hasConsumers(of producerID: ProducerID) -> Bool {
        !(consumers[producerID]?.isEmpty ?? true)
    }

    public func remove(consumer id: String) {
        for key in consumers.keys { consumers[key]?.removeAll { $0.consumer.id == id } }
    }

    /// Sends one producer packet to every consumer of it.
    public func route(_ arrival: borrowing Producer.Arrival, from producer: Producer, transport server: any MediaTransport, now: Duration) {
        if !taps.isEmpty, let tapped = taps[producer.participantID] {
            for tap in tapped.values {
                let target = tap.targetLayer(of: producer, now: now) ?? arrival.layer
                if let layer = tap.deliver(arrival, from: producer, bestLayer: target) {
                    requestKeyframe(producer: producer.id, layer: layer, now: now)
                }
            }
        }
        if !outlets.isEmpty, let relays = outlets[producer.participantID] {
            for relay in relays { relay.deliver(arrival, from: producer, now: now) }
        }
        guard let bindings = consumers[producer.id], !bindings.isEmpty else { return }
        let best = producer.activeLayers(now: now).last ?? arrival.layer
        if outcomes.count < bindings.count { outcomes = Array(repeating: Outcome(), count: bindings.count) }
        // The copies may be built on several threads at once: each writes only its own
        // consumer, transport, sink and outcome, and what needs the router or the logger
        // is done from the outcomes afterwards, on the loop.
        let helperCopies = outcomes.withUnsafeMutableBufferPointer { outcomes in
            server.fanOut(count: bindings.count) { lane, range in
                for index in range {
                    let consumer = bindings[index].consumer, sink = bindings[index].sink
                    let layerBefore = consumer.currentLayer
                    var outcome = Outcome()
                    lane.sendRTP(on: bindings[index].subscriber, capacity: consumer.capacity(for: arrival)) { slot in
                        let output = consumer.forward(arrival, bestLayer: best, now: now, into: slot) { size in
                            sink.allocateTransportSequence(size: size, now: now)
                        }
                        outcome.keyframeNeeded = output.keyframeNeeded
                        outcome.sent = output.length != nil
                        return output.length
                    }
                    outcome.switchedFrom = consumer.currentLayer != layerBefore ? .some(layerBefore) : nil
                    outcomes[index] = outcome
                }
            }
        }
        SFUMetrics.forwardedByHelpers.increment(by: helperCopies)
        var forwarded = 0
        for index in bindings.indices {
            let outcome = outcomes[index]
            if outcome.sent { forwarded += 1 }
            if let layerBefore = outcome.switchedFrom, let layer = bindings[index].consumer.currentLayer {
                logger.debug("layer switched", metadata: ["consumer": "\(bindings[index].consumer.id)", "from": "\(layerBefore.map(String.init) ?? "none")", "to": "\(layer)"])
            }
            if let layer = outcome.keyframeNeeded { requestKeyframe(producer: producer.id, layer: layer, now: now) }
        }
        SFUMetrics.forwarded.increment(by: forwarded)
    }

    /// Asks the publisher for a keyframe on one layer (PLI), throttled per layer.
    public func requestKeyframe(producer id: ProducerID, layer: Int, now: Duration) {
        guard let entry = producers[id], let ssrc = entry.producer.ssrc(ofLayer: layer) else { return }
        let key = LayerKey(producer: id, layer: layer)
        if let last = lastKeyframeRequest[key], now - last < keyframeRequestInterval { return }
        lastKeyframeRequest[key] = now
        SFUMetrics.keyframeRequests.increment()
        logger.trace("keyframe requested", metadata: ["producer": "\(id)", "layer": "\(layer)"])
        switch entry.source {
        case .session(let publisher, let transport): transport.sendRTCP([.pictureLossIndication(senderSSRC: 1, mediaSSRC: ssrc)], on: publisher)
        case .local(let onKeyframeRequest), .relayed(let onKeyframeRequest, _): onKeyframeRequest(layer)
        }
    }
}
