import MediaCore
import RTCP
import RTP
import SDP

/// One subscriber's view of a producer (mediasoup's SimpleConsumer and SimulcastConsumer in
/// one): it forwards one layer at a time under its own SSRC, renumbering sequence numbers
/// and timestamps so that a switch between layers is seamless to the receiver, and only ever
/// switches on a keyframe.
///
/// Not thread-safe: owned by its router's event loop. Time is passed in.
public final class Consumer {
    public let id: String
    public let producerID: String
    public let media: NegotiatedMedia
    public let outgoing: LocalStream
    /// The layer to forward; nil follows the producer's best active layer.
    public var preferredLayer: Int?
    /// Set by bandwidth allocation when not even the lowest layer fits: nothing is sent.
    public private(set) var isPaused = false
    public private(set) var currentLayer: Int?
    public private(set) var drops = DropCounters()
    public private(set) var packetsSent: UInt32 = 0
    public private(set) var octetsSent: UInt32 = 0
    /// From the subscriber's reception reports of our sender reports.
    public var roundTripTime: Duration?

    /// Why packets were not forwarded, for metrics.
    public struct DropCounters: Sendable, Equatable {
        public var notAKeyframe = 0
        public var otherLayer = 0
        public var beforeSwitch = 0
        public var paused = 0
    }

    /// What forwarding one packet produced.
    public struct Output {
        public var packet: [UInt8]?
        /// The layer whose keyframe the consumer waits for.
        public var keyframeNeeded: Int?
    }

    private var sequenceOffset: UInt16 = 0
    private var timestampOffset: UInt32 = 0
    private var lastSequence: UInt16?
    private var lastTimestamp: UInt32?
    private var lastSentAt: Duration?
    /// The first source sequence number forwarded from the current layer.
    private var switchSequence: UInt16 = 0
    private var cache = RTPPacketCache(capacity: 1024)
    private var rtxSequence = UInt16.random(in: 0...UInt16.max)
    private let midExtensionID: UInt8?
    let transportSequenceExtensionID: UInt8?
    private let clockRate: UInt32

    public init(id: String, producerID: String, media: NegotiatedMedia, outgoing: LocalStream) {
        self.id = id
        self.producerID = producerID
        self.media = media
        self.outgoing = outgoing
        midExtensionID = media.headerExtensions.first { $0.uri == RTPHeaderExtensionURI.mid }?.id
        transportSequenceExtensionID = media.headerExtensions.first { $0.uri == RTPHeaderExtensionURI.transportWideCC }?.id
        clockRate = media.codec.clockRate
    }

    /// Forwards `arrival` if it belongs to the layer being sent; `bestLayer` is the
    /// producer's highest active layer, used when no layer is preferred.
    /// `transportSequence` numbers the packet for the subscriber's transport-cc feedback; it
    /// is called only when a packet is sent, with the packet's size.
    public func forward(_ arrival: Producer.Arrival, bestLayer: Int, now: Duration, transportSequence: (Int) -> UInt16? = { _ in nil }) -> Output {
        if isPaused {
            drops.paused += 1
            SFUMetrics.droppedPaused.increment()
            return Output(packet: nil, keyframeNeeded: nil)
        }
        let target = min(preferredLayer ?? bestLayer, bestLayer)
        if currentLayer != target {
            if arrival.layer == target && arrival.isKeyframe {
                switchTo(arrival, now: now)
            } else if arrival.layer != currentLayer {
                if arrival.layer == target {
                    drops.notAKeyframe += 1
                    SFUMetrics.droppedNotAKeyframe.increment()
                } else {
                    drops.otherLayer += 1
                    SFUMetrics.droppedOtherLayer.increment()
                }
                return Output(packet: nil, keyframeNeeded: target)
            }
        } else if arrival.layer != currentLayer {
            drops.otherLayer += 1
            SFUMetrics.droppedOtherLayer.increment()
            return Output(packet: nil, keyframeNeeded: nil)
        }
        let source = arrival.packet
        // A late packet of this layer from before the switch would collide with the old
        // layer's numbering.
        guard !SerialNumber.isNewer(switchSequence, than: source.sequenceNumber) else {
            drops.beforeSwitch += 1
            SFUMetrics.droppedBeforeSwitch.increment()
            return Output(packet: nil, keyframeNeeded: nil)
        }
        let sequence = source.sequenceNumber &+ sequenceOffset
        let timestamp = source.timestamp &+ timestampOffset
        var builder = RTPPacketBuilder(payloadType: media.codec.payloadType, sequenceNumber: sequence, timestamp: timestamp, ssrc: outgoing.ssrc)
        builder.marker = source.marker
        if let midExtensionID { builder.extensions = [(midExtensionID, Array(media.mid.utf8))] }
        if let id = transportSequenceExtensionID, let wide = transportSequence(source.payload.count + 40) {
            builder.extensions.append((id, RTPHeaderExtensionValue.encodeTransportSequence(wide)))
        }
        builder.payload = Array(source.payload)
        let bytes = builder.serialize()
        cache.store(bytes, sequenceNumber: sequence)
        if lastSequence.map({ SerialNumber.isNewer(sequence, than: $0) }) ?? true { lastSequence = sequence }
        if lastTimestamp.map({ SerialNumber.isNewer(timestamp, than: $0) }) ?? true { lastTimestamp = timestamp }
        lastSentAt = now
        packetsSent &+= 1
        octetsSent &+= UInt32(truncatingIfNeeded: source.payload.count)
        SFUMetrics.forwarded.increment()
        return Output(packet: bytes, keyframeNeeded: nil)
    }

    /// Stops sending; resuming waits for a keyframe, since the receiver missed what came between.
    public func pause() {
        isPaused = true
        currentLayer = nil
    }

    public func resume() {
        isPaused = false
    }

    /// A sender report for the outgoing stream: the publisher's own NTP-to-RTP mapping moved
    /// into our timestamp space, so the receiver can line audio up with video as the
    /// publisher captured them. Without one, our own send times stand in.
    public func senderReport(now: Duration, wallClockNTP: UInt64, publisherReport: (ntp: UInt64, rtp: UInt32, arrival: Duration)?) -> SenderReport? {
        guard currentLayer != nil, let lastTimestamp, let lastSentAt else { return nil }
        let ntp: UInt64
        let rtp: UInt32
        if let report = publisherReport {
            let elapsed = max(0, (now - report.arrival).seconds)
            ntp = report.ntp &+ UInt64(elapsed * 4_294_967_296)
            rtp = report.rtp &+ timestampOffset &+ UInt32(truncatingIfNeeded: Int64(elapsed * Double(clockRate)))
        } else {
            ntp = wallClockNTP
            rtp = lastTimestamp &+ UInt32(truncatingIfNeeded: Int64(max(0, (now - lastSentAt).seconds) * Double(clockRate)))
        }
        return SenderReport(ssrc: outgoing.ssrc, ntpTimestamp: ntp, rtpTimestamp: rtp, packetCount: packetsSent, octetCount: octetsSent)
    }

    /// Retransmissions for a subscriber's NACK: RTX when negotiated, else the packet again.
    /// Each resend gets its own transport-wide sequence number, as it is a new packet on the wire.
    public func retransmit(_ sequences: [UInt16], transportSequence: (Int) -> UInt16? = { _ in nil }) -> [[UInt8]] {
        sequences.compactMap { sequence in
            guard let cached = cache.packet(sequence) else {
                SFUMetrics.retransmissionCacheMisses.increment()
                return nil
            }
            SFUMetrics.retransmitted.increment()
            return resend(cached, transportSequence: transportSequence)
        }
    }

    /// Up to `count` of the most recently sent packets again, as RTX, for a bandwidth probe;
    /// the receiver already has them and discards the copies. Nothing without RTX.
    public func probePackets(count: Int, transportSequence: (Int) -> UInt16?) -> [[UInt8]] {
        guard media.retransmission != nil, let lastSequence else { return [] }
        var packets: [[UInt8]] = []
        var sequence = lastSequence
        for _ in 0..<min(count, 64) {
            if let cached = cache.packet(sequence) { packets.append(resend(cached, transportSequence: transportSequence)) }
            if packets.count == count { break }
            sequence &-= 1
        }
        return packets
    }

    /// The size of a typical probe packet: the last one sent.
    public var lastPacketSize: Int { lastSequence.flatMap { cache.packet($0)?.count } ?? 0 }

    private func resend(_ cached: [UInt8], transportSequence: (Int) -> UInt16?) -> [UInt8] {
        var bytes = cached
        if let rtx = media.retransmission, let rtxSSRC = outgoing.rtxSSRC, let packet = try? RTPPacket(cached) {
            bytes = packet.retransmission(payloadType: rtx.payloadType, ssrc: rtxSSRC, sequenceNumber: rtxSequence)
            rtxSequence &+= 1
        }
        if let id = transportSequenceExtensionID, let wide = transportSequence(bytes.count) {
            RTPPacket.overwriteExtension(id: id, with: RTPHeaderExtensionValue.encodeTransportSequence(wide), in: &bytes)
        }
        return bytes
    }

    /// Continues the outgoing numbering from the last packet sent: sequence numbers run on
    /// by one, the timestamp advances by the wall time elapsed.
    private func switchTo(_ arrival: Producer.Arrival, now: Duration) {
        let source = arrival.packet
        let nextSequence = lastSequence.map { $0 &+ 1 } ?? UInt16.random(in: 0...0x7FFF)
        sequenceOffset = nextSequence &- source.sequenceNumber
        let nextTimestamp: UInt32
        if let lastTimestamp, let lastSentAt {
            let elapsed = now - lastSentAt
            let ticks = (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) * Double(clockRate)
            nextTimestamp = lastTimestamp &+ UInt32(max(1, min(ticks, Double(clockRate) * 10)))
        } else {
            nextTimestamp = UInt32.random(in: 0...UInt32.max)
        }
        timestampOffset = nextTimestamp &- source.timestamp
        switchSequence = source.sequenceNumber
        currentLayer = arrival.layer
    }
}
