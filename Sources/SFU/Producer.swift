import FLV
import MediaCore
import RTCP
import RTP
import SDP

/// One incoming track of a publisher (mediasoup's Producer): up to three simulcast layers,
/// each with its SSRC, statistics, keyframe tracking and loss detection.
///
/// Not thread-safe: owned by its router's event loop. Time is passed in.
public final class Producer {
    public let id: ProducerID
    public let kind: MediaKind
    public let media: NegotiatedMedia
    /// Layer order: index 0 is the lowest quality. Browsers list rids highest first.
    public let rids: [String]
    public private(set) var layers: [Layer]
    private var layerBySSRC: [UInt32: Int] = [:]
    private var layerByRTXSSRC: [UInt32: Int] = [:]
    private let ridExtensionID: UInt8?
    private let repairedRIDExtensionID: UInt8?
    /// The last packets of each layer, by sequence number: one cache that every consumer
    /// answers NACKs from, so memory does not grow with the number of subscribers.
    private var recent: [[RTPPacket?]]
    private static let recentCapacity = 1024

    public struct Layer {
        public var ssrc: UInt32?
        public var packets = 0
        public var bytes = 0
        public var lastPacketAt: Duration?
        public var bitrate: Double = 0
        var windowStart: Duration?
        var windowBytes = 0
        var unwrapper = SequenceUnwrapper()
        var highest: Int64?
        /// For the receiver reports owed to the publisher.
        var reception: ReceptionStatistics
        /// The publisher's last sender report on this layer: its clocks, and when it came.
        public var senderReport: (ntp: UInt64, rtp: UInt32, arrival: Duration)?
        /// Missing sequence numbers → when first noticed and how often asked for.
        var missing: [Int64: (since: Duration, requests: Int)] = [:]
        /// The picture size of the layer's last keyframe (VP8 and H.264; nil before one, or
        /// for other codecs). Kept while the publisher pauses the layer.
        public var size: PictureSize?
    }

    /// A packet accepted into a layer, with what forwarding needs to know about it.
    public struct Arrival {
        public var packet: RTPPacket
        public var layer: Int
        public var isKeyframe: Bool
        /// Restored from an RTX retransmission.
        public var repaired: Bool
    }

    public init(id: ProducerID, media: NegotiatedMedia) {
        self.id = id
        participantID = id.participant
        kind = media.kind
        self.media = media
        rids = media.remoteRIDs.reversed()
        layers = Array(repeating: Layer(reception: ReceptionStatistics(clockRate: media.codec.clockRate)), count: max(1, media.remoteRIDs.count))
        recent = Array(repeating: Array(repeating: nil, count: Self.recentCapacity), count: layers.count)
        ridExtensionID = media.headerExtensions.first { $0.uri == RTPHeaderExtensionURI.rid }?.id
        repairedRIDExtensionID = media.headerExtensions.first { $0.uri == RTPHeaderExtensionURI.repairedRID }?.id
        if rids.isEmpty {
            let pairs = media.remoteRetransmissionPairs
            if let first = media.remoteSSRCs.first(where: { ssrc in !pairs.contains { $0.rtx == ssrc.ssrc } }) {
                layers[0].ssrc = first.ssrc
                layerBySSRC[first.ssrc] = 0
                if let rtx = pairs.first(where: { $0.media == first.ssrc })?.rtx { layerByRTXSSRC[rtx] = 0 }
            }
        }
    }

    public var isSimulcast: Bool { !rids.isEmpty }

    /// The publisher: the router keeps taps by participant.
    public let participantID: ParticipantID

    /// Takes a packet of this track; nil (counted on /metrics) when it belongs to no known
    /// layer, is not media, or repeats a packet already here: publishers pad their probes
    /// with retransmissions of what they sent, and those must not reach subscribers again.
    public func receive(_ packet: RTPPacket, now: Duration) -> Arrival? {
        var packet = packet
        var repaired = false
        let layer: Int
        if packet.payloadType == media.retransmission?.payloadType {
            guard let index = rtxLayer(of: packet), let original = unwrapRetransmission(packet, layer: index) else {
                SFUMetrics.droppedUnknownStream.increment()
                return nil
            }
            packet = original
            layer = index
            repaired = true
        } else {
            guard packet.payloadType == media.codec.payloadType, let index = mediaLayer(of: packet) else {
                SFUMetrics.droppedUnknownStream.increment()
                return nil
            }
            layer = index
        }
        guard record(packet, layer: layer, now: now) else {
            SFUMetrics.droppedDuplicate.increment()
            return nil
        }
        recent[layer][Int(packet.sequenceNumber) % Self.recentCapacity] = packet
        let isKeyframe = Self.isKeyframe(packet, codec: media.codec.name)
        if isKeyframe { learnSize(from: packet, layer: layer) }
        // Reports describe the network as it was, before retransmissions repaired it.
        if !repaired { layers[layer].reception.record(sequence: packet.sequenceNumber, timestamp: packet.timestamp, arrival: now) }
        return Arrival(packet: packet, layer: layer, isKeyframe: isKeyframe, repaired: repaired)
    }

    /// Takes a packet whose layer is already known: another node's relay, which names the
    /// layer in its own header because a publisher stops marking packets with their rid once
    /// its SSRCs are acknowledged. A new SSRC for the layer (the publisher restarted) replaces the old.
    public func receive(_ packet: RTPPacket, layer: Int, now: Duration) -> Arrival? {
        guard layers.indices.contains(layer), packet.payloadType == media.codec.payloadType else {
            SFUMetrics.droppedUnknownStream.increment()
            return nil
        }
        if layers[layer].ssrc != packet.ssrc {
            if let old = layers[layer].ssrc {
                // A new stream: its sequence numbers start afresh.
                layerBySSRC[old] = nil
                layers[layer].unwrapper = SequenceUnwrapper()
                layers[layer].highest = nil
                layers[layer].missing = [:]
                layers[layer].reception = ReceptionStatistics(clockRate: media.codec.clockRate)
            }
            layers[layer].ssrc = packet.ssrc
            layerBySSRC[packet.ssrc] = layer
        }
        guard record(packet, layer: layer, now: now) else {
            SFUMetrics.droppedDuplicate.increment()
            return nil
        }
        recent[layer][Int(packet.sequenceNumber) % Self.recentCapacity] = packet
        layers[layer].reception.record(sequence: packet.sequenceNumber, timestamp: packet.timestamp, arrival: now)
        let isKeyframe = Self.isKeyframe(packet, codec: media.codec.name)
        if isKeyframe { learnSize(from: packet, layer: layer) }
        return Arrival(packet: packet, layer: layer, isKeyframe: isKeyframe, repaired: false)
    }

    private func learnSize(from packet: RTPPacket, layer: Int) {
        guard kind == .video, let size = KeyframeSize.of(packet, codec: media.codec.name) else { return }
        layers[layer].size = size
    }

    /// The layer an SSRC of this track carries, once known.
    public func layer(ofSSRC ssrc: UInt32) -> Int? { layerBySSRC[ssrc] }

    /// Sequence numbers to NACK now, per layer SSRC: each gap is asked for up to three times,
    /// 100 ms apart, and forgotten after a second.
    public func pendingNACKs(now: Duration) -> [(ssrc: UInt32, sequences: [UInt16])] {
        var result: [(UInt32, [UInt16])] = []
        for index in layers.indices {
            guard let ssrc = layers[index].ssrc else { continue }
            var due: [UInt16] = []
            for (sequence, state) in layers[index].missing {
                // Kept for the full second, so a repair that answers the last request still counts.
                if now - state.since > .seconds(1) {
                    layers[index].missing[sequence] = nil
                } else if state.requests < 3, state.requests == 0 || now - state.since >= .milliseconds(100 * state.requests) {
                    layers[index].missing[sequence]!.requests += 1
                    due.append(UInt16(truncatingIfNeeded: sequence))
                }
            }
            if !due.isEmpty { result.append((ssrc, due.sorted { SerialNumber.isNewer($1, than: $0) })) }
        }
        return result
    }

    /// A recent packet of `layer`, for a retransmission, if it is still held.
    public func recentPacket(layer: Int, sequence: UInt16) -> RTPPacket? {
        guard recent.indices.contains(layer), let packet = recent[layer][Int(sequence) % Self.recentCapacity],
              packet.sequenceNumber == sequence else { return nil }
        return packet
    }

    /// Takes the publisher's sender report for one of this track's SSRCs.
    public func receive(_ report: SenderReport, now: Duration) -> Bool {
        guard let index = layerBySSRC[report.ssrc] else { return false }
        layers[index].senderReport = (report.ntpTimestamp, report.rtpTimestamp, now)
        layers[index].reception.recordSenderReport(ntpTimestamp: report.ntpTimestamp, arrival: now)
        return true
    }

    /// Reception report blocks for every layer heard from.
    public func receptionReports(now: Duration) -> [ReceptionReport] {
        layers.indices.compactMap { index in
            guard let ssrc = layers[index].ssrc else { return nil }
            return layers[index].reception.report(ssrc: ssrc, now: now)
        }
    }

    /// The SSRC to ask for a keyframe on `layer`, once it is known.
    public func ssrc(ofLayer layer: Int) -> UInt32? {
        layers.indices.contains(layer) ? layers[layer].ssrc : nil
    }

    /// Layers that sent media in the last second, lowest first.
    public func activeLayers(now: Duration) -> [Int] {
        layers.indices.filter { isActive(layer: $0, now: now) }
    }

    func isActive(layer: Int, now: Duration) -> Bool {
        layers[layer].lastPacketAt.map { now - $0 < .seconds(1) } ?? false
    }

    /// What the publisher was last asked to send, by layer (`Router.tick`).
    public internal(set) var layersSentByPublisher: [Bool]?

    /// Layers a consumer may be allocated: the active ones, and those the publisher was asked
    /// to pause, at the bitrate they had, since asking for one brings it back.
    public func selectableLayers(now: Duration) -> [Int] {
        let active = activeLayers(now: now)
        return layers.indices.filter { index in
            active.contains(index) || (layersSentByPublisher?[index] == false && layers[index].bitrate > 0)
        }
    }

    // MARK: Internals

    private func mediaLayer(of packet: RTPPacket) -> Int? {
        if let known = layerBySSRC[packet.ssrc] { return known }
        if isSimulcast {
            guard let id = ridExtensionID, let rid = RTPHeaderExtensionValue.token(packet.extensionValue(id: id)),
                  let index = rids.firstIndex(of: rid) else { return nil }
            layerBySSRC[packet.ssrc] = index
            layers[index].ssrc = packet.ssrc
            return index
        }
        // No SSRC was signalled: the first media SSRC seen is the track's.
        guard layers[0].ssrc == nil else { return nil }
        layers[0].ssrc = packet.ssrc
        layerBySSRC[packet.ssrc] = 0
        return 0
    }

    private func rtxLayer(of packet: RTPPacket) -> Int? {
        if let known = layerByRTXSSRC[packet.ssrc] { return known }
        if isSimulcast {
            guard let id = repairedRIDExtensionID, let rid = RTPHeaderExtensionValue.token(packet.extensionValue(id: id)),
                  let index = rids.firstIndex(of: rid) else { return nil }
            layerByRTXSSRC[packet.ssrc] = index
            return index
        }
        guard layerByRTXSSRC.isEmpty else { return nil }
        layerByRTXSSRC[packet.ssrc] = 0
        return 0
    }

    private func unwrapRetransmission(_ packet: RTPPacket, layer: Int) -> RTPPacket? {
        guard let ssrc = layers[layer].ssrc else { return nil }
        return packet.unwrappingRetransmission(payloadType: media.codec.payloadType, ssrc: ssrc)
    }

    /// Counts a packet into its layer's statistics and gap tracking; false when the layer
    /// already had it.
    private func record(_ packet: RTPPacket, layer index: Int, now: Duration) -> Bool {
        var layer = layers[index]
        let sequence = layer.unwrapper.unwrap(packet.sequenceNumber)
        if let highest = layer.highest, sequence <= highest, layer.missing[sequence] == nil {
            // Older than the gap memory, or already received.
            return false
        }
        layer.packets += 1
        layer.bytes += packet.bytes.count
        layer.lastPacketAt = now
        if layer.windowStart == nil { layer.windowStart = now }
        layer.windowBytes += packet.bytes.count
        if let start = layer.windowStart, now - start >= .milliseconds(500) {
            let seconds = Double((now - start).components.attoseconds) / 1e18 + Double((now - start).components.seconds)
            // Smoothed over about two seconds: a keyframe doubles one window's rate, and
            // allocation must not drop a subscriber a layer for it.
            let windowRate = Double(layer.windowBytes * 8) / max(seconds, 0.001)
            layer.bitrate = layer.bitrate == 0 ? windowRate : 0.75 * layer.bitrate + 0.25 * windowRate
            layer.windowStart = now
            layer.windowBytes = 0
        }
        if let highest = layer.highest {
            if sequence > highest + 1 {
                // A gap: remember what is missing, at most a few hundred packets' worth.
                for missing in (highest + 1)..<min(sequence, highest + 1 + 256) { layer.missing[missing] = (now, 0) }
            }
            layer.missing[sequence] = nil
            layer.highest = max(highest, sequence)
        } else {
            layer.highest = sequence
        }
        layers[index] = layer
        return true
    }

    static func isKeyframe(_ packet: RTPPacket, codec: String) -> Bool {
        switch codec.uppercased() {
        case "VP8": VP8Descriptor.parse(packet.payload)?.isKeyframe ?? false
        case "VP9": VP9Descriptor.parse(packet.payload)?.isKeyframe ?? false
        case "H264": H264Payload.parse(packet.payload)?.isKeyframe ?? false
        default: true
        }
    }
}
