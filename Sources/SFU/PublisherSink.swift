import Foundation
import Logging
import RTCP
import RTP
import SDP
import MediaPlane

/// A publishing peer (a WHIP session or a studio participant): each received section is a
/// producer in the router; losses on the way in are NACKed.
public final class PublisherSink: MediaSink {
    public let participantID: ParticipantID
    private let router: Router
    private let clock: () -> Duration
    private var producersByMid: [String: Producer] = [:]
    private var midBySSRC: [UInt32: String] = [:]
    private var midByPayloadType: [UInt8: String] = [:]
    private let midExtensionID: UInt8?
    private let transportSequenceExtensionID: UInt8?
    private let audioLevelExtensionID: UInt8?
    private var transportFeedback = TransportFeedbackRecorder()
    private var feedbackMediaSSRC: UInt32?
    private var lastReportAt: Duration?
    private var gauges: TransportGauges?
    /// Set for a publisher whose video has REMB but no transport-wide feedback: REMB is then
    /// the only thing that moves its bitrate (one with transport-cc sizes its own).
    private var receiveEstimate: ReceiveSideEstimate?
    private let onClose: (PublisherSink) -> Void
    private let onConnect: (PublisherSink) -> Void

    /// `onConnect` runs once the media can be played (DTLS is up and the producers are in the
    /// router); `onClose` when the session ends.
    public init(participantID: ParticipantID, answer: SDPAnswer, router: Router, clock: @escaping () -> Duration,
                onConnect: @escaping (PublisherSink) -> Void = { _ in }, onClose: @escaping (PublisherSink) -> Void) {
        self.participantID = participantID
        self.router = router
        self.clock = clock
        self.onClose = onClose
        self.onConnect = onConnect
        for media in answer.media where media.direction.receives {
            let producer = Producer(id: ProducerID(participant: participantID, mid: media.mid), media: media)
            producersByMid[media.mid] = producer
            midByPayloadType[media.codec.payloadType] = media.mid
            if let rtx = media.retransmission { midByPayloadType[rtx.payloadType] = media.mid }
        }
        midExtensionID = answer.media.lazy.flatMap(\.headerExtensions).first { $0.uri == RTPHeaderExtensionURI.mid }?.id
        transportSequenceExtensionID = answer.media.lazy.flatMap(\.headerExtensions).first { $0.uri == RTPHeaderExtensionURI.transportWideCC }?.id
        audioLevelExtensionID = answer.media.lazy.flatMap(\.headerExtensions).first { $0.uri == RTPHeaderExtensionURI.audioLevel }?.id
        let videoWantsREMB = answer.media.contains { $0.kind == .video && $0.direction.receives && $0.codec.feedback.contains("goog-remb") }
        if videoWantsREMB, transportSequenceExtensionID == nil { receiveEstimate = ReceiveSideEstimate() }
    }

    public var producers: [Producer] { producersByMid.values.sorted { $0.id < $1.id } }
    /// The broadcast whose router the producers join.
    public var routerID: String { router.id }

    public func sessionDidConnect(_ peer: any MediaSession, transport server: any MediaTransport) {
        for producer in producersByMid.values { router.add(producer, publisher: peer, transport: server) }
        gauges = TransportGauges(session: peer.id.rawValue, broadcast: router.id, direction: .receive)
        onConnect(self)
    }

    public func session(_ peer: any MediaSession, didReceive packet: RTPPacket, transport server: any MediaTransport) {
        let now = clock()
        // Every packet counts for the sender's bandwidth estimate, retransmissions included.
        if let id = transportSequenceExtensionID, let sequence = RTPHeaderExtensionValue.transportSequence(packet.extensionValue(id: id)) {
            transportFeedback.record(sequence, at: now)
            if feedbackMediaSSRC == nil { feedbackMediaSSRC = packet.ssrc }
        }
        guard let mid = mid(of: packet), let producer = producersByMid[mid] else { return }
        midBySSRC[packet.ssrc] = mid
        guard let arrival = producer.receive(packet, now: now) else { return }
        if arrival.repaired { SFUMetrics.repairedArrivals.increment() }
        if producer.kind == .audio, let id = audioLevelExtensionID, let level = RTPHeaderExtensionValue.audioLevel(packet.extensionValue(id: id)) {
            router.recordAudioLevel(producer: producer.id, level: level.level, now: now)
        }
        router.route(arrival, from: producer, transport: server, now: now)
    }

    public func session(_ peer: any MediaSession, didReceive packets: [RTCPPacket], transport server: any MediaTransport) {
        let now = clock()
        for case .senderReport(let report) in packets {
            for producer in producersByMid.values where producer.receive(report, now: now) { break }
        }
    }

    public func tick(_ peer: any MediaSession, transport server: any MediaTransport) {
        let now = clock()
        if lastReportAt.map({ now - $0 >= .seconds(1) }) ?? true {
            lastReportAt = now
            let blocks = producersByMid.values.flatMap { $0.receptionReports(now: now) }
            gauges?.record(bitrate: producersByMid.values.flatMap(\.layers).reduce(0) { $0 + $1.bitrate },
                           loss: Double(blocks.map(\.fractionLost).max() ?? 0) / 256)
            if !blocks.isEmpty {
                server.sendRTCP([.receiverReport(ReceiverReport(ssrc: 1, reports: Array(blocks.prefix(31))))], on: peer)
            }
            sendREMB(lossByte: blocks.map(\.fractionLost).max() ?? 0, peer: peer, server: server)
        }
        if let media = feedbackMediaSSRC, let feedback = transportFeedback.feedback(senderSSRC: 1, mediaSSRC: media) {
            server.sendRTCP([.transportFeedback(feedback)], on: peer)
        }
        for producer in producersByMid.values {
            for (ssrc, sequences) in producer.pendingNACKs(now: now) {
                SFUMetrics.nacksToPublishers.increment(by: sequences.count)
                server.sendRTCP([.nack(GenericNACK(senderSSRC: 1, mediaSSRC: ssrc, lost: sequences))], on: peer)
            }
        }
    }

    private func sendREMB(lossByte: UInt8, peer: any MediaSession, server: any MediaTransport) {
        guard var estimate = receiveEstimate else { return }
        let video = producersByMid.values.filter { $0.kind == .video }
        let ssrcs = midBySSRC.filter { entry in video.contains { $0.media.mid == entry.value } }.keys.sorted()
        guard !ssrcs.isEmpty else { return }
        let incoming = video.flatMap(\.layers).reduce(0) { $0 + $1.bitrate }
        let bitrate = estimate.update(incoming: incoming, loss: Double(lossByte) / 256)
        receiveEstimate = estimate
        server.sendRTCP([.remb(REMB(senderSSRC: 1, bitrate: bitrate, ssrcs: Array(ssrcs.prefix(255))))], on: peer)
    }

    /// The session this sink served, once it has closed.
    public private(set) var closedSessionID: SessionID?

    public func sessionDidClose(_ peer: any MediaSession, reason: String) {
        for producer in producersByMid.values { router.remove(producer: producer.id) }
        gauges?.remove()
        closedSessionID = peer.id
        onClose(self)
    }

    private func mid(of packet: RTPPacket) -> String? {
        if let id = midExtensionID, let mid = RTPHeaderExtensionValue.token(packet.extensionValue(id: id)), producersByMid[mid] != nil { return mid }
        return midBySSRC[packet.ssrc] ?? midByPayloadType[packet.payloadType]
    }
}

/// A subscribing peer (a WHEP session or a studio participant's receive side): one consumer
/// per sent section, registered once DTLS is up; its NACKs and keyframe requests are served.
public final class SubscriberSink: MediaSink {
    private let router: Router
    private let clock: () -> Duration
    private var consumersBySSRC: [UInt32: Consumer] = [:]
    private let consumers: [Consumer]
    private var lastReportAt: Duration?
    private var lastAllocationAt: Duration?
    /// Congestion control toward this subscriber; nil when it gives no transport-cc feedback.
    public private(set) var estimator: BandwidthEstimator?
    /// Whether `estimator` is set, asked once per packet sent without copying the estimator.
    private let isEstimating: Bool
    private var nextTransportSequence = UInt16.random(in: 0...UInt16.max)
    private var sendHistory = SendHistory()
    private var prober = BandwidthProber()
    private var gauges: TransportGauges?
    private var fractionLostBySSRC: [UInt32: UInt8] = [:]
    private var octetsAtLastReport: UInt32 = 0

    private var logger: Logger
    private let onClose: () -> Void

    /// `producers` maps each section's mid to the producer it plays.
    public init(answer: SDPAnswer, producers: [String: ProducerID], router: Router, clock: @escaping () -> Duration, protectionOverhead: Int = 0,
                logger: Logger, onClose: @escaping () -> Void) {
        self.router = router
        self.clock = clock
        self.logger = logger
        self.onClose = onClose
        var consumers: [Consumer] = []
        for media in answer.media where media.direction.sends {
            guard let outgoing = media.localStream, let producerID = producers[media.mid] else { continue }
            let consumer = Consumer(id: "\(producerID)->\(outgoing.ssrc)", producerID: producerID, media: media, outgoing: outgoing,
                                    protectionOverhead: protectionOverhead)
            consumers.append(consumer)
            consumersBySSRC[outgoing.ssrc] = consumer
        }
        self.consumers = consumers
        isEstimating = consumers.contains { $0.transportSequenceExtensionID != nil }
        if isEstimating { estimator = BandwidthEstimator(initial: 1_500_000) }
    }

    public func sessionDidConnect(_ peer: any MediaSession, transport server: any MediaTransport) {
        for consumer in consumers { router.add(consumer, subscriber: peer, sink: self, now: clock()) }
        gauges = TransportGauges(session: peer.id.rawValue, broadcast: router.id, direction: .send)
        logger[metadataKey: "session"] = "\(peer.id)"
    }

    /// Numbers an outgoing packet for transport-cc and remembers when it left and how big it was.
    func allocateTransportSequence(size: Int, now: Duration, probe: Int? = nil) -> UInt16? {
        guard isEstimating else { return nil }
        let sequence = nextTransportSequence
        nextTransportSequence &+= 1
        sendHistory.record(sequence, at: now, size: size, probe: probe)
        return sequence
    }

    /// The subscriber's feedback, matched to what was sent, for the estimator.
    private func handle(_ feedback: TransportFeedback, now: Duration) {
        // The estimator is updated where it is stored: a local copy would share its arrays
        // and copy them on the first write.
        guard estimator != nil else { return }
        var arrival = Duration.milliseconds(Int64(feedback.referenceTime) * 64)
        var results: [BandwidthEstimator.PacketResult] = []
        for status in feedback.packets {
            var arrived: Duration?
            if let delta = status.delta {
                arrival += .microseconds(Int64(delta) * 250)
                arrived = arrival
            }
            guard let sent = sendHistory.take(status.sequenceNumber) else { continue }
            // A probe burst queues at a bottleneck by design: it is measured on its own and
            // kept out of the delay trend, where it would read as congestion.
            if let probe = sent.probe {
                prober.record(cluster: probe, arrival: arrived, size: sent.size)
            } else {
                results.append(.init(sentAt: sent.at, arrivedAt: arrived, size: sent.size))
            }
        }
        estimator?.update(results, now: now)
        applyProbeVerdict(now: now)
    }

    private func applyProbeVerdict(now: Duration) {
        guard let before = estimator?.estimate, let measured = prober.verdict(now: now) else { return }
        estimator?.applyProbe(bitrate: measured, now: now)
        logger.debug("bandwidth probe", metadata: ["measured_bps": "\(Int(measured))", "estimate_before": "\(Int(before))",
                                                   "estimate_after": "\(Int(estimator?.estimate ?? 0))", "failed": "\(prober.failed)", "succeeded": "\(prober.succeeded)"])
    }

    /// Every 500 ms, shares the estimate out (`BandwidthAllocator`) and applies the decisions.
    /// When a consumer is held below its best layer, the path is probed for room to climb.
    private func allocate(peer: any MediaSession, server: any MediaTransport, now: Duration) {
        applyProbeVerdict(now: now)
        guard let estimator else { return }
        if let last = lastAllocationAt, now - last < .milliseconds(500) { return }
        lastAllocationAt = now
        let requests = consumers.map { consumer in
            let producer = router.producer(consumer.producerID)
            return BandwidthAllocator.Request(kind: consumer.media.kind, layerBitrates: producer?.layers.map(\.bitrate) ?? [],
                                              selectable: producer?.selectableLayers(now: now) ?? [], isSimulcast: producer?.isSimulcast ?? false,
                                              currentLayer: consumer.currentLayer, preferredLayer: consumer.preferredLayer)
        }
        let allocation = BandwidthAllocator.allocate(requests, estimate: estimator.estimate)
        for (consumer, decision) in zip(consumers, allocation.decisions) {
            switch decision {
            case .target(let layer) where consumer.isPaused || consumer.targetLayer != layer:
                logger.debug("layer chosen", metadata: ["consumer": "\(consumer.id)", "layer": "\(layer)", "estimate_bps": "\(Int(estimator.estimate))"])
            case .pause(.bandwidth(let available, let lowest)) where !consumer.isPaused:
                logger.debug("video paused: not even the lowest layer fits", metadata: ["consumer": "\(consumer.id)", "estimate_bps": "\(Int(estimator.estimate))",
                                                                                    "budget_bps": "\(Int(available))", "lowest_layer_bps": "\(Int(lowest))"])
            default:
                break
            }
            consumer.apply(decision)
        }
        let wanted = allocation.wanted
        let heldBelowBest = allocation.heldBelowBest.map { consumers[$0] }
        guard let held = heldBelowBest.first(where: { $0.lastPacketSize > 0 }) ?? heldBelowBest.last, let producer = router.producer(held.producerID), let cluster = prober.cluster(wanted: wanted, estimate: estimator.estimate, overusing: estimator.usage == .overusing,
                                                      packetSize: held.lastPacketSize > 0 ? held.lastPacketSize : Consumer.paddingBytes + 40, now: now) else { return }
        let packets = held.probePackets(count: cluster.packets, from: producer) { size in
            allocateTransportSequence(size: size, now: now, probe: cluster.id)
        }
        SFUMetrics.probePackets.increment(by: packets.count)
        for packet in packets { server.sendRTP(packet, on: peer) }
    }

    public func session(_ peer: any MediaSession, didReceive packet: RTPPacket, transport server: any MediaTransport) {}

    public func session(_ peer: any MediaSession, didReceive packets: [RTCPPacket], transport server: any MediaTransport) {
        for packet in packets {
            switch packet {
            case .nack(let nack):
                guard let consumer = consumersBySSRC[nack.mediaSSRC], let producer = router.producer(consumer.producerID) else { continue }
                let now = clock()
                let resent = consumer.retransmit(nack.lostSequenceNumbers, from: producer) { size in self.allocateTransportSequence(size: size, now: now) }
                for packet in resent { server.sendRTP(packet, on: peer) }
            case .pictureLossIndication(_, let ssrc):
                keyframe(for: ssrc, server: server)
            case .fullIntraRequest(let fir):
                for entry in fir.entries { keyframe(for: entry.ssrc, server: server) }
            case .receiverReport(let report):
                roundTrip(report.reports)
            case .senderReport(let report):
                roundTrip(report.reports)
            case .transportFeedback(let feedback):
                handle(feedback, now: clock())
            default:
                continue
            }
        }
    }

    /// Bandwidth allocation; every second a sender report (with the stream's CNAME) per
    /// consumer, and the transport's gauges.
    public func tick(_ peer: any MediaSession, transport server: any MediaTransport) {
        let now = clock()
        allocate(peer: peer, server: server, now: now)
        guard lastReportAt.map({ now - $0 >= .seconds(1) }) ?? true else { return }
        let elapsed = lastReportAt.map { (now - $0).seconds } ?? 1
        lastReportAt = now
        recordGauges(elapsed: elapsed)
        let wallClock = NTPTime.from(unixSeconds: Date().timeIntervalSince1970)
        for consumer in consumers {
            guard let report = consumer.senderReport(now: now, wallClockNTP: wallClock, publisherReport: router.publisherReport(for: consumer)) else { continue }
            server.sendRTCP([.senderReport(report), .sourceDescription([SourceDescriptionChunk(ssrc: consumer.outgoing.ssrc, cname: consumer.outgoing.cname)])], on: peer)
        }
    }

    public func sessionDidClose(_ peer: any MediaSession, reason: String) {
        for consumer in consumers { router.remove(consumer: consumer.id) }
        gauges?.remove()
        onClose()
    }

    private func recordGauges(elapsed: Double) {
        guard let gauges else { return }
        let octets = consumers.reduce(UInt32(0)) { $0 &+ $1.octetsSent }
        gauges.record(bitrate: Double(octets &- octetsAtLastReport) * 8 / max(elapsed, 0.001),
                      loss: Double(fractionLostBySSRC.values.max() ?? 0) / 256)
        octetsAtLastReport = octets
        gauges.record(estimate: estimator?.estimate, roundTrip: consumers.compactMap(\.roundTripTime).max()?.seconds)
        for consumer in consumers where consumer.media.kind == .video { gauges.record(layer: consumer.currentLayer, mid: consumer.media.mid) }
    }

    private func roundTrip(_ blocks: [ReceptionReport]) {
        let arrival = NTPTime.from(unixSeconds: Date().timeIntervalSince1970)
        for block in blocks {
            if consumersBySSRC[block.ssrc] != nil { fractionLostBySSRC[block.ssrc] = block.fractionLost }
            guard let consumer = consumersBySSRC[block.ssrc],
                  let rtt = NTPTime.roundTrip(arrivalNTP: arrival, lastSenderReport: block.lastSenderReport, delaySinceLastSenderReport: block.delaySinceLastSenderReport) else { continue }
            consumer.roundTripTime = rtt
        }
    }

    private func keyframe(for ssrc: UInt32, server: any MediaTransport) {
        guard let consumer = consumersBySSRC[ssrc], let producer = router.producer(consumer.producerID) else { return }
        let now = clock()
        let layer = consumer.currentLayer ?? producer.activeLayers(now: now).last ?? 0
        router.requestKeyframe(producer: consumer.producerID, layer: layer, now: now)
    }
}
