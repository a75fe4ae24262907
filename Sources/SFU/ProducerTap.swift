import FLV
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

/// The pixels a picture is drawn into on the program: what a tap's simulcast layer must fill.
public struct TileSize: Equatable, Sendable {
    public var width: Int
    public var height: Int

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    /// A picture fills the tile when scaling it up by at most this much covers it: a layer a
    /// few pixels short of the tile is worth a quarter of the decoding of the next one up.
    static let upscaleAllowed = 1.1

    func isFilled(by size: PictureSize) -> Bool {
        Double(size.width) * Self.upscaleAllowed >= Double(width) && Double(size.height) * Self.upscaleAllowed >= Double(height)
    }

    /// The layer a tile of this size needs among `candidates` (lowest first): the smallest
    /// whose known picture size fills it; the highest when none does or no size is known yet.
    /// Generic and closure-fed so the per-packet path allocates nothing.
    static func layer<Candidates: BidirectionalCollection<Int>>(for tile: TileSize?, among candidates: Candidates,
                                                               size: (Int) -> PictureSize?) -> Int? {
        guard let tile else { return candidates.last }
        return candidates.first { size($0).map(tile.isFilled) == true } ?? candidates.last
    }
}

/// What an internal consumer takes a participant's media for; each participant has at most
/// one tap of each.
public enum TapPurpose: Hashable, Sendable, CaseIterable {
    /// The compositor decodes it onto the program.
    case program
    /// The server keeps a copy of it as it came, beside the participant's own recording.
    case recording
}

/// An internal consumer of one participant's producers: for each track it follows the
/// smallest active layer that fills the participant's tile on the program (the best one
/// without a tile), switching only on keyframes like a subscriber, and hands packets on
/// without rewriting them. Lives on the router's loop.
public final class ProducerTap {
    public let participantID: ParticipantID
    public let purpose: TapPurpose
    let onPacket: (TappedPacket) -> Void
    /// Per producer: the layer being passed on.
    var currentLayer: [ObjectIdentifier: Int] = [:]
    /// Where the participant is drawn; nil: the best layer there is.
    public var tile: TileSize?

    public init(participantID: ParticipantID, purpose: TapPurpose = .program, tile: TileSize? = nil, onPacket: @escaping (TappedPacket) -> Void) {
        self.participantID = participantID
        self.purpose = purpose
        self.tile = tile
        self.onPacket = onPacket
    }

    /// The layer to follow among those arriving now.
    func targetLayer(of producer: Producer, now: Duration) -> Int? {
        TileSize.layer(for: tile, among: producer.layers.indices.lazy.filter { producer.isActive(layer: $0, now: now) },
                       size: { producer.layers[$0].size })
    }

    /// The layer the publisher should keep sending for this tap, whether active now or not.
    func wantedLayer(of producer: Producer) -> Int {
        TileSize.layer(for: tile, among: producer.layers.indices, size: { producer.layers[$0].size }) ?? (producer.layers.count - 1)
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
