import MediaCore
import NIOCore
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
    public let producerID: ProducerID
    public let media: NegotiatedMedia
    public let outgoing: LocalStream
    /// Three layers kept apart, as mediasoup's SimulcastConsumer keeps them: the most the
    /// subscriber wants (nil: the best there is), the most bandwidth allocation allows (nil:
    /// no limit), and the layer forwarded now, which follows the lower of the two once that
    /// layer's keyframe comes.
    public var preferredLayer: Int?
    public private(set) var targetLayer: Int?
    public private(set) var currentLayer: Int?
    /// Why nothing is sent, when nothing is.
    public private(set) var pauseReason: PauseReason?
    public var isPaused: Bool { pauseReason != nil }
    public private(set) var drops = DropCounters()
    public private(set) var packetsSent: UInt32 = 0
    public private(set) var octetsSent: UInt32 = 0
    /// The size of the last packet sent: what a bandwidth probe's packets will weigh.
    public private(set) var lastPacketSize = 0
    /// From the subscriber's reception reports of our sender reports.
    public var roundTripTime: Duration?

    /// Why packets were not forwarded, for metrics.
    public struct DropCounters: Sendable, Equatable {
        public var notAKeyframe = 0
        public var otherLayer = 0
        public var beforeSwitch = 0
        public var paused = 0
    }

    /// What `forward` did with one arrival.
    public struct Output {
        /// The length of the packet written into the slot; nil when nothing was sent.
        public var length: Int?
        /// The layer whose keyframe the consumer waits for.
        public var keyframeNeeded: Int?
    }

    /// The largest header this consumer writes: the fixed 12 bytes, the extension block's 4,
    /// and a mid of up to 16 bytes with the transport-wide sequence number, padded to 20.
    static let maximumHeaderLength = 12 + 4 + 20

    /// Room `forward` may need to write the packet built from `arrival`, RTX's two bytes included.
    public func capacity(for arrival: borrowing Producer.Arrival) -> Int {
        Self.maximumHeaderLength + 2 + arrival.packet.payloadRange.count
    }

    /// One stretch of forwarding from one layer: how outgoing numbers map to its numbers.
    private struct Epoch {
        var firstSequence: UInt16
        var sequenceOffset: UInt16
        var timestampOffset: UInt32
        var pictures: PictureRenumbering?
        var layer: Int
    }

    /// VP8 and VP9 number their pictures (picture ID, TL0PICIDX) per encoder, and each
    /// simulcast layer is an encoder of its own: across a switch the numbers must run on.
    /// Otherwise a receiver can take the new layer's pictures for ones it already decoded
    /// (libwebrtc remembers decoded frames by picture ID) and decode them against the old
    /// layer's references: a wrong picture at the old size, and no keyframe request.
    struct PictureRenumbering {
        var pictureIDDelta: UInt16 = 0
        var tl0Delta: UInt8 = 0
    }

    private var sequenceOffset: UInt16 = 0
    private var timestampOffset: UInt32 = 0
    private var pictures: PictureRenumbering?
    private var lastPictureID: UInt16?
    private var lastTL0PictureIndex: UInt8?
    private let numberedPictures: NumberedPictures?

    private enum NumberedPictures {
        case vp8, vp9

        func numbers(_ payload: ArraySlice<UInt8>) -> (pictureID: UInt16?, tl0PictureIndex: UInt8?)? {
            switch self {
            case .vp8: VP8Descriptor.parse(payload).map { ($0.pictureID, $0.tl0PictureIndex) }
            case .vp9: VP9Descriptor.parse(payload).map { ($0.pictureID, $0.tl0PictureIndex) }
            }
        }

        func renumber(_ payload: UnsafeMutableRawBufferPointer, _ renumbering: PictureRenumbering) -> (pictureID: UInt16?, tl0PictureIndex: UInt8?) {
            switch self {
            case .vp8: VP8Descriptor.renumber(payload, pictureIDDelta: renumbering.pictureIDDelta, tl0Delta: renumbering.tl0Delta)
            case .vp9: VP9Descriptor.renumber(payload, pictureIDDelta: renumbering.pictureIDDelta, tl0Delta: renumbering.tl0Delta)
            }
        }
    }
    private var lastSequence: UInt16?
    private var lastTimestamp: UInt32?
    private var lastSentAt: Duration?
    /// The first source sequence number forwarded from the current layer.
    private var switchSequence: UInt16 = 0
    /// The last few epochs, newest last: a NACK is answered from the producer's cache
    /// through them, so a consumer keeps no packets of its own.
    private var epochs: [Epoch] = []
    private var rtxSequence = UInt16.random(in: 0...UInt16.max)
    private let midExtensionID: UInt8?
    private let midBytes: [UInt8]
    let transportSequenceExtensionID: UInt8?
    private let clockRate: UInt32
    private let allocator = ByteBufferAllocator()
    /// Room left after each packet built here for the transport's protection (SRTP's tag),
    /// so that protecting it in place needs no second allocation.
    private let protectionOverhead: Int

    public init(id: String, producerID: ProducerID, media: NegotiatedMedia, outgoing: LocalStream, protectionOverhead: Int = 0) {
        self.id = id
        self.protectionOverhead = protectionOverhead
        self.producerID = producerID
        self.media = media
        self.outgoing = outgoing
        midBytes = Array(media.mid.utf8)
        // A one-byte extension element holds 1 to 16 bytes.
        midExtensionID = (1...16).contains(midBytes.count) ? media.headerExtensions.first { $0.uri == RTPHeaderExtensionURI.mid }?.id : nil
        transportSequenceExtensionID = media.headerExtensions.first { $0.uri == RTPHeaderExtensionURI.transportWideCC }?.id
        clockRate = media.codec.clockRate
        numberedPictures = switch media.codec.name.uppercased() {
        case "VP8": .vp8
        case "VP9": .vp9
        default: nil
        }
    }

    /// Forwards `arrival` if it belongs to the layer being sent, writing the outgoing packet
    /// into `slot` (at least `capacity(for:)` bytes; the transport's send batch, so a copy
    /// is built where it is encrypted and sent). `bestLayer` is the producer's highest
    /// active layer, used when no layer is preferred. `transportSequence` numbers the packet
    /// for the subscriber's transport-cc feedback; it is called only when a packet is sent,
    /// with the packet's size.
    public func forward(_ arrival: borrowing Producer.Arrival, bestLayer: Int, now: Duration, into slot: UnsafeMutableRawBufferPointer,
                        transportSequence: (Int) -> UInt16? = { _ in nil }) -> Output {
        precondition(slot.count >= capacity(for: arrival), "a slot smaller than capacity(for:)")
        if isPaused {
            drops.paused += 1
            SFUMetrics.droppedPaused.increment()
            return Output(length: nil, keyframeNeeded: nil)
        }
        let target = wantedLayer(best: bestLayer)
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
                return Output(length: nil, keyframeNeeded: target)
            }
        } else if arrival.layer != currentLayer {
            drops.otherLayer += 1
            SFUMetrics.droppedOtherLayer.increment()
            return Output(length: nil, keyframeNeeded: nil)
        }
        // A late packet of this layer from before the switch would collide with the old
        // layer's numbering.
        guard !SerialNumber.isNewer(switchSequence, than: arrival.packet.sequenceNumber) else {
            drops.beforeSwitch += 1
            SFUMetrics.droppedBeforeSwitch.increment()
            return Output(length: nil, keyframeNeeded: nil)
        }
        let sequence = arrival.packet.sequenceNumber &+ sequenceOffset
        let timestamp = arrival.packet.timestamp &+ timestampOffset
        let payloadLength = arrival.packet.payloadRange.count
        let wide = transportSequenceExtensionID == nil ? nil : transportSequence(payloadLength + 40)
        let (length, numbers) = write(arrival.packet, into: slot.baseAddress!, payloadType: media.codec.payloadType, ssrc: outgoing.ssrc,
                                      sequence: sequence, timestamp: timestamp, transportSequence: wide, originalSequence: nil, pictures: pictures)
        if lastSequence.map({ SerialNumber.isNewer(sequence, than: $0) }) ?? true {
            lastSequence = sequence
            if let pictureID = numbers.pictureID { lastPictureID = pictureID }
            if let index = numbers.tl0PictureIndex { lastTL0PictureIndex = index }
        }
        if lastTimestamp.map({ SerialNumber.isNewer(timestamp, than: $0) }) ?? true { lastTimestamp = timestamp }
        lastSentAt = now
        lastPacketSize = length
        packetsSent &+= 1
        octetsSent &+= UInt32(truncatingIfNeeded: payloadLength)
        return Output(length: length, keyframeNeeded: nil)
    }

    /// The layer to forward when `best` is the best one the producer sends.
    public func wantedLayer(best: Int) -> Int {
        min(preferredLayer ?? best, targetLayer ?? best, best)
    }

    /// Applies bandwidth allocation's decision. Pausing stops sending; resuming waits for a
    /// keyframe, since the receiver missed what came between.
    public func apply(_ decision: BandwidthAllocator.Decision) {
        switch decision {
        case .unchanged:
            break
        case .target(let layer):
            targetLayer = layer
            pauseReason = nil
        case .pause(let reason):
            if pauseReason == nil { currentLayer = nil }
            pauseReason = reason
        }
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

    /// Retransmissions for a subscriber's NACK, from `producer`'s cache: RTX when negotiated,
    /// else the packet again. Each resend gets its own transport-wide sequence number, as it
    /// is a new packet on the wire.
    public func retransmit(_ sequences: [UInt16], from producer: Producer, transportSequence: (Int) -> UInt16? = { _ in nil }) -> [ByteBuffer] {
        sequences.compactMap { sequence in
            guard let packet = resend(sequence, from: producer, transportSequence: transportSequence) else {
                SFUMetrics.retransmissionCacheMisses.increment()
                return nil
            }
            SFUMetrics.retransmitted.increment()
            return packet
        }
    }

    /// `count` packets (at most 64) for a bandwidth probe, as RTX the receiver discards: the
    /// most recently sent packets again, and padding-only packets (RFC 3550 §5.1) when there
    /// are not enough of those. A consumer that has sent nothing yet, or was paused long
    /// enough for the producer's cache to move on, must still be able to probe its way back.
    /// Nothing without RTX.
    public func probePackets(count: Int, from producer: Producer, transportSequence: (Int) -> UInt16?) -> [ByteBuffer] {
        guard let rtx = media.retransmission, let rtxSSRC = outgoing.rtxSSRC else { return [] }
        let wanted = min(count, 64)
        var packets: [ByteBuffer] = []
        if var sequence = lastSequence {
            for _ in 0..<wanted {
                if let packet = resend(sequence, from: producer, transportSequence: transportSequence) { packets.append(packet) }
                if packets.count == wanted { break }
                sequence &-= 1
            }
        }
        while packets.count < wanted {
            let wide = transportSequenceExtensionID == nil ? nil : transportSequence(Self.paddingBytes + 40)
            var buffer = header(payloadType: rtx.payloadType, ssrc: rtxSSRC, sequence: rtxSequence, timestamp: lastTimestamp ?? 0, marker: false,
                                transportSequence: wide, bodyLength: Self.paddingBytes, padded: true)
            rtxSequence &+= 1
            buffer.writeRepeatingByte(0, count: Self.paddingBytes - 1)
            buffer.writeInteger(UInt8(Self.paddingBytes))
            packets.append(buffer)
        }
        return packets
    }

    /// The largest padding one RTP packet can carry: its count is one byte.
    static let paddingBytes = 255

    /// The packet sent as `sequence`, rebuilt from the producer's copy of its source.
    private func resend(_ sequence: UInt16, from producer: Producer, transportSequence: (Int) -> UInt16?) -> ByteBuffer? {
        guard let lastSequence, !SerialNumber.isNewer(sequence, than: lastSequence),
              let epoch = epochs.last(where: { !SerialNumber.isNewer($0.firstSequence, than: sequence) }),
              let source = producer.recentPacket(layer: epoch.layer, sequence: sequence &- epoch.sequenceOffset) else { return nil }
        let timestamp = source.timestamp &+ epoch.timestampOffset
        let wide = transportSequenceExtensionID == nil ? nil : transportSequence(source.payloadRange.count + 42)
        guard let rtx = media.retransmission, let rtxSSRC = outgoing.rtxSSRC else {
            return serialize(source, payloadType: media.codec.payloadType, ssrc: outgoing.ssrc, sequence: sequence, timestamp: timestamp,
                             transportSequence: wide, originalSequence: nil, pictures: epoch.pictures)
        }
        defer { rtxSequence &+= 1 }
        return serialize(source, payloadType: rtx.payloadType, ssrc: rtxSSRC, sequence: rtxSequence, timestamp: timestamp,
                         transportSequence: wide, originalSequence: sequence, pictures: epoch.pictures)
    }

    /// The outgoing packet in one allocation with room for SRTP's tag.
    private func serialize(_ source: borrowing RTPPacket, payloadType: UInt8, ssrc: UInt32, sequence: UInt16, timestamp: UInt32,
                           transportSequence: UInt16?, originalSequence: UInt16?, pictures: PictureRenumbering?) -> ByteBuffer {
        let capacity = Self.maximumHeaderLength + 2 + source.payloadRange.count
        var buffer = allocator.buffer(capacity: capacity + protectionOverhead)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { slot in
            write(source, into: slot.baseAddress!, payloadType: payloadType, ssrc: ssrc, sequence: sequence, timestamp: timestamp,
                  transportSequence: transportSequence, originalSequence: originalSequence, pictures: pictures).length
        }
        return buffer
    }

    /// Writes the outgoing packet at `out` (room for `maximumHeaderLength` + 2 + the payload):
    /// our header, the original sequence number first when it is RTX (RFC 4588), then the
    /// source's payload with its picture numbers moved into our numbering.
    private func write(_ source: borrowing RTPPacket, into out: UnsafeMutableRawPointer, payloadType: UInt8, ssrc: UInt32,
                       sequence: UInt16, timestamp: UInt32, transportSequence: UInt16?, originalSequence: UInt16?,
                       pictures: PictureRenumbering?) -> (length: Int, numbers: (pictureID: UInt16?, tl0PictureIndex: UInt8?)) {
        var length = writeHeader(into: out, payloadType: payloadType, ssrc: ssrc, sequence: sequence, timestamp: timestamp, marker: source.marker,
                                 transportSequence: transportSequence, padded: false)
        if let originalSequence {
            Self.store(originalSequence, at: out + length)
            length += 2
        }
        let payloadStart = length
        let payloadRange = source.payloadRange
        source.bytes.withUnsafeBytes { bytes in
            UnsafeMutableRawBufferPointer(start: out + payloadStart, count: payloadRange.count).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[payloadRange]))
        }
        length += payloadRange.count
        guard let pictures, let numberedPictures else { return (length, (nil, nil)) }
        let numbers = numberedPictures.renumber(UnsafeMutableRawBufferPointer(start: out + payloadStart, count: payloadRange.count), pictures)
        return (length, numbers)
    }

    /// A buffer holding our RTP header, sized for `bodyLength` more bytes and SRTP's tag.
    private func header(payloadType: UInt8, ssrc: UInt32, sequence: UInt16, timestamp: UInt32, marker: Bool,
                        transportSequence: UInt16?, bodyLength: Int, padded: Bool) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: Self.maximumHeaderLength + bodyLength + protectionOverhead)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.maximumHeaderLength) { slot in
            writeHeader(into: slot.baseAddress!, payloadType: payloadType, ssrc: ssrc, sequence: sequence, timestamp: timestamp, marker: marker,
                        transportSequence: transportSequence, padded: padded)
        }
        return buffer
    }

    /// Writes our RTP header at `out` (room for `maximumHeaderLength`), with our mid and the
    /// transport-wide sequence number as one-byte extensions (RFC 8285); its length.
    private func writeHeader(into out: UnsafeMutableRawPointer, payloadType: UInt8, ssrc: UInt32, sequence: UInt16, timestamp: UInt32,
                             marker: Bool, transportSequence: UInt16?, padded: Bool) -> Int {
        let transportID = transportSequence == nil ? nil : transportSequenceExtensionID
        let extensionBytes = (midExtensionID == nil ? 0 : 1 + midBytes.count) + (transportID == nil ? 0 : 3)
        let paddedExtension = (extensionBytes + 3) / 4 * 4
        out.storeBytes(of: UInt8(0x80 | (padded ? 0x20 : 0) | (paddedExtension > 0 ? 0x10 : 0)), as: UInt8.self)
        out.storeBytes(of: (marker ? 0x80 : 0) | (payloadType & 0x7F), toByteOffset: 1, as: UInt8.self)
        Self.store(sequence, at: out + 2)
        Self.store(timestamp, at: out + 4)
        Self.store(ssrc, at: out + 8)
        guard paddedExtension > 0 else { return 12 }
        Self.store(UInt16(0xBEDE), at: out + 12)
        Self.store(UInt16(paddedExtension / 4), at: out + 14)
        var cursor = 16
        if let id = midExtensionID {
            out.storeBytes(of: id << 4 | UInt8(midBytes.count - 1), toByteOffset: cursor, as: UInt8.self)
            midBytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(start: out + cursor + 1, count: $0.count).copyMemory(from: $0) }
            cursor += 1 + midBytes.count
        }
        if let id = transportID, let transportSequence {
            out.storeBytes(of: id << 4 | 1, toByteOffset: cursor, as: UInt8.self)
            Self.store(transportSequence, at: out + cursor + 1)
            cursor += 3
        }
        (out + cursor).initializeMemory(as: UInt8.self, repeating: 0, count: 16 + paddedExtension - cursor)
        return 16 + paddedExtension
    }

    private static func store<Integer: FixedWidthInteger>(_ value: Integer, at address: UnsafeMutableRawPointer) {
        address.storeBytes(of: value.bigEndian, as: Integer.self)
    }

    /// Continues the outgoing numbering from the last packet sent: sequence numbers run on
    /// by one, the timestamp advances by the wall time elapsed.
    private func switchTo(_ arrival: borrowing Producer.Arrival, now: Duration) {
        let nextSequence = lastSequence.map { $0 &+ 1 } ?? UInt16.random(in: 0...0x7FFF)
        sequenceOffset = nextSequence &- arrival.packet.sequenceNumber
        let nextTimestamp: UInt32
        if let lastTimestamp, let lastSentAt {
            let elapsed = now - lastSentAt
            let ticks = (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) * Double(clockRate)
            nextTimestamp = lastTimestamp &+ UInt32(max(1, min(ticks, Double(clockRate) * 10)))
        } else {
            nextTimestamp = UInt32.random(in: 0...UInt32.max)
        }
        timestampOffset = nextTimestamp &- arrival.packet.timestamp
        if let numbers = numberedPictures?.numbers(arrival.packet.payload) {
            // Deltas modulo 2^15 serve the 7-bit form too: 2^7 divides 2^15.
            var renumbering = PictureRenumbering()
            if let pictureID = numbers.pictureID {
                let next = lastPictureID.map { $0 &+ 1 } ?? pictureID
                renumbering.pictureIDDelta = (next &- pictureID) & 0x7FFF
            }
            if let index = numbers.tl0PictureIndex {
                renumbering.tl0Delta = lastTL0PictureIndex.map { $0 &+ 1 &- index } ?? 0
            }
            pictures = renumbering
        }
        switchSequence = arrival.packet.sequenceNumber
        currentLayer = arrival.layer
        epochs.append(Epoch(firstSequence: nextSequence, sequenceOffset: sequenceOffset, timestampOffset: timestampOffset, pictures: pictures,
                            layer: arrival.layer))
        if epochs.count > 8 { epochs.removeFirst() }
    }
}
