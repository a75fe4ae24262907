import FLV
import MediaCore
import RTP

/// The jitter buffer and depacketizer of one video track: it puts RTP packets back in order,
/// waits a bounded time for late ones, and hands out whole coded frames.
///
/// A frame is complete when every packet from the one after the previous frame's marker up
/// to its own marker is here. A gap that outlives `maxWait` (or a buffer overflowing) means
/// the frames that follow cannot be decoded: everything up to the next keyframe is dropped
/// and `keyframeNeeded` says to ask the publisher for one. Not thread-safe; time is passed in.
public struct FrameAssembler {
    public let codec: VideoCodec
    public var maxWait: Duration
    public var capacity: Int
    /// Set when the assembler waits for a keyframe it has not asked for yet; the owner sends
    /// PLI and clears it.
    public var keyframeNeeded = true
    public private(set) var framesDropped = 0
    public private(set) var packetsDropped = 0

    private var unwrapper = SequenceUnwrapper()
    private var buffered: [Int64: (packet: RTPPacket, arrival: Duration)] = [:]
    /// The next packet a frame continues with; nil while waiting for a keyframe start.
    private var next: Int64?
    private var oldestGapSince: Duration?

    public init(codec: VideoCodec, maxWait: Duration = .milliseconds(150), capacity: Int = 1024) {
        self.codec = codec
        self.maxWait = maxWait
        self.capacity = capacity
    }

    /// Takes one packet; returns the frames it completed, oldest first.
    public mutating func insert(_ packet: RTPPacket, now: Duration) -> [EncodedFrame] {
        guard !packet.payload.isEmpty else { return [] }
        let sequence = unwrapper.unwrap(packet.sequenceNumber)
        if let next, sequence < next { return [] }
        buffered[sequence] = (packet, now)
        if next == nil { resynchronize() }
        var frames: [EncodedFrame] = []
        while let frame = takeFrame(now: now) { frames.append(frame) }
        if buffered.count > capacity { skipToKeyframe() }
        return frames
    }

    /// Frames completed by time alone: a gap that has waited long enough is given up on.
    public mutating func poll(now: Duration) -> [EncodedFrame] {
        var frames: [EncodedFrame] = []
        while let frame = takeFrame(now: now) { frames.append(frame) }
        return frames
    }

    private mutating func takeFrame(now: Duration) -> EncodedFrame? {
        guard let start = next else { return nil }
        var sequence = start
        var packets: [RTPPacket] = []
        while let entry = buffered[sequence] {
            packets.append(entry.packet)
            if entry.packet.marker {
                for used in start...sequence { buffered[used] = nil }
                next = sequence + 1
                oldestGapSince = nil
                if let frame = depacketize(packets) { return frame }
                framesDropped += 1
                skipToKeyframe()
                return nil
            }
            sequence += 1
        }
        // A hole at `sequence`: wait for it while it is young and later packets are few.
        guard !buffered.isEmpty else { return nil }
        let since = oldestGapSince ?? buffered.values.map(\.arrival).min() ?? now
        oldestGapSince = since
        guard now - since >= maxWait else { return nil }
        packetsDropped += 1
        framesDropped += 1
        skipToKeyframe()
        return next == nil ? nil : takeFrame(now: now)
    }

    /// Drops what cannot be decoded without a keyframe and starts again at the earliest
    /// buffered keyframe start, if there is one.
    private mutating func skipToKeyframe() {
        next = nil
        oldestGapSince = nil
        keyframeNeeded = true
        resynchronize()
    }

    private mutating func resynchronize() {
        guard let start = buffered.filter({ isKeyframeStart($0.value.packet) }).keys.min() else {
            // Keep only recent packets while waiting: older ones can never start a frame.
            if buffered.count > capacity / 2 {
                let keep = buffered.keys.sorted().suffix(capacity / 2)
                let cutoff = keep.first ?? 0
                packetsDropped += buffered.count - keep.count
                buffered = buffered.filter { $0.key >= cutoff }
            }
            return
        }
        packetsDropped += buffered.keys.filter { $0 < start }.count
        buffered = buffered.filter { $0.key >= start }
        next = start
        keyframeNeeded = false
    }

    private func isKeyframeStart(_ packet: RTPPacket) -> Bool {
        switch codec {
        case .vp8: VP8Descriptor.parse(packet.payload)?.isKeyframe ?? false
        case .vp9: VP9Descriptor.parse(packet.payload)?.isKeyframe ?? false
        case .h264: H264Payload.parse(packet.payload).map { payload in
            switch payload.packetization {
            case .fragment(let start, _): start && payload.nalTypes.contains(5)
            default: payload.nalTypes.contains(7) || payload.nalTypes.contains(5)
            }
        } ?? false
        // No RTP payload format for HEVC or AV1 is negotiated: nothing starts a frame.
        case .hevc, .av1: false
        }
    }

    private func depacketize(_ packets: [RTPPacket]) -> EncodedFrame? {
        guard let first = packets.first else { return nil }
        var data: [UInt8] = []
        data.reserveCapacity(packets.reduce(0) { $0 + $1.payload.count })
        switch codec {
        case .vp8:
            for packet in packets {
                guard let descriptor = VP8Descriptor.parse(packet.payload) else { return nil }
                data.append(contentsOf: packet.payload.dropFirst(descriptor.payloadOffset))
            }
            guard let descriptor = VP8Descriptor.parse(first.payload), descriptor.startOfPartition, descriptor.partitionIndex == 0 else { return nil }
            return EncodedFrame(data: data, rtpTimestamp: first.timestamp, isKeyframe: descriptor.isKeyframe)
        case .vp9:
            for packet in packets {
                guard let descriptor = VP9Descriptor.parse(packet.payload) else { return nil }
                data.append(contentsOf: packet.payload.dropFirst(descriptor.payloadOffset))
            }
            guard let descriptor = VP9Descriptor.parse(first.payload), descriptor.startOfFrame else { return nil }
            return EncodedFrame(data: data, rtpTimestamp: first.timestamp, isKeyframe: !descriptor.interPicturePredicted)
        case .h264:
            var keyframe = false
            for packet in packets {
                guard H264Depacketizer.append(packet.payload, to: &data, keyframe: &keyframe) else { return nil }
            }
            return data.isEmpty ? nil : EncodedFrame(data: data, rtpTimestamp: first.timestamp, isKeyframe: keyframe)
        case .hevc, .av1:
            return nil
        }
    }
}

/// RFC 6184 payloads (single NAL unit, STAP-A, FU-A) back to an Annex B byte stream.
public enum H264Depacketizer {
    static let startCode: [UInt8] = [0, 0, 0, 1]

    /// Appends one payload's NAL units; false when the payload is malformed.
    public static func append(_ payload: ArraySlice<UInt8>, to output: inout [UInt8], keyframe: inout Bool) -> Bool {
        guard let header = payload.first, header & 0x80 == 0 else { return false }
        switch header & 0x1F {
        case 1...23:
            keyframe = keyframe || header & 0x1F == 5
            output += startCode
            output += payload
        case 24:
            guard let units = H264Payload.aggregatedUnits(payload) else { return false }
            for unit in units {
                keyframe = keyframe || unit[unit.startIndex] & 0x1F == 5
                output += startCode
                output += unit
            }
        case 28:
            guard payload.count >= 2 else { return false }
            let fragment = payload[payload.startIndex + 1]
            if fragment & 0x80 != 0 {
                keyframe = keyframe || fragment & 0x1F == 5
                output += startCode
                output.append(header & 0xE0 | fragment & 0x1F)
            }
            output += payload.dropFirst(2)
        default:
            return false
        }
        return true
    }
}

/// An Annex B access unit to RFC 6184 payloads: a NAL unit that fits goes alone, a larger
/// one in FU-A fragments; the caller sets the marker on the last payload.
public enum H264Packetizer {
    public static func payloads(_ annexB: [UInt8], maxSize: Int = 1200) -> [[UInt8]] {
        var payloads: [[UInt8]] = []
        for unit in AnnexB.nalUnits(annexB) where !unit.isEmpty && unit[unit.startIndex] & 0x1F != 9 {
            if unit.count <= maxSize {
                payloads.append(Array(unit))
                continue
            }
            let header = unit[unit.startIndex]
            let indicator = header & 0xE0 | 28
            var offset = unit.startIndex + 1
            while offset < unit.endIndex {
                let end = min(offset + maxSize - 2, unit.endIndex)
                let start: UInt8 = offset == unit.startIndex + 1 ? 0x80 : 0
                let last: UInt8 = end == unit.endIndex ? 0x40 : 0
                payloads.append([indicator, start | last | header & 0x1F] + unit[offset..<end])
                offset = end
            }
        }
        return payloads
    }
}
