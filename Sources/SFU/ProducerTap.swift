import RTP
import SDP

/// A packet handed to an internal consumer (the compositor), on the router's loop.
public struct TappedPacket: Sendable {
    public var producerID: ProducerID
    public var kind: MediaKind
    /// The codec's SDP name (VP8, H264, opus…).
    public var codec: String
    /// The RTP clock rate (90000 for video, 48000 for Opus).
    public var clockRate: Int
    public var packet: RTPPacket
    /// True on the first packet after the tap moved to another simulcast layer: sequence
    /// numbers start again there.
    public var layerChanged: Bool
    /// The publisher's last sender report for this packet's layer: its RTP clock against the
    /// publisher's wall clock, which every track of one publisher shares.
    public var senderReport: (ntp: UInt64, rtp: UInt32)?

    /// When the content stamped `timestamp` on this packet's RTP clock was captured, in
    /// seconds of the publisher's wall clock (RTCP sender reports); nil before the first report.
    public func captureTime(of timestamp: UInt32, clockRate: Int) -> Double? {
        guard let senderReport, clockRate > 0 else { return nil }
        let reportSeconds = Double(senderReport.ntp >> 32) + Double(senderReport.ntp & 0xFFFF_FFFF) / 4_294_967_296
        return reportSeconds + Double(Int32(bitPattern: timestamp &- senderReport.rtp)) / Double(clockRate)
    }
}

/// An internal consumer of one participant's producers: it follows each track's best
/// active layer (switching only on keyframes, like a subscriber) and hands packets on
/// without rewriting them. Lives on the router's loop.
public final class ProducerTap {
    public let participantID: ParticipantID
    let onPacket: (TappedPacket) -> Void
    /// Per producer: the layer being passed on.
    var currentLayer: [ObjectIdentifier: Int] = [:]

    public init(participantID: ParticipantID, onPacket: @escaping (TappedPacket) -> Void) {
        self.participantID = participantID
        self.onPacket = onPacket
    }

    /// Passes `arrival` on if it belongs to the followed layer; returns the layer whose
    /// keyframe it waits for, if any.
    func deliver(_ arrival: Producer.Arrival, from producer: Producer, bestLayer: Int) -> Int? {
        let key = ObjectIdentifier(producer)
        let current = currentLayer[key]
        var changed = false
        if current != bestLayer {
            if arrival.layer == bestLayer && arrival.isKeyframe {
                currentLayer[key] = bestLayer
                changed = true
            } else if arrival.layer != current {
                return arrival.layer == bestLayer ? bestLayer : nil
            }
        }
        guard arrival.layer == currentLayer[key] else { return nil }
        let report = producer.layers[arrival.layer].senderReport
        onPacket(TappedPacket(producerID: producer.id, kind: producer.kind, codec: producer.media.codec.name, clockRate: Int(producer.media.codec.clockRate),
                              packet: arrival.packet, layerChanged: changed, senderReport: report.map { ($0.ntp, $0.rtp) }))
        return current != bestLayer && !changed ? bestLayer : nil
    }
}
