import MediaCodecs
import RTP

/// Turns a WebRTC publisher's RTP (H.264 and Opus, as OBS sends over WHIP) into the packets
/// the outputs take. Pictures are put back in order and reassembled (`FrameAssembler`); Opus
/// is decoded and encoded again as AAC, since neither HLS nor FLV carries Opus. That audio
/// transcode is the only one: the pictures pass through as they came.
///
/// RTP clocks start anywhere, one per track: each track is anchored at its first packet's
/// arrival and then follows its own clock, so the tracks line up to within the difference of
/// their first packets' network delay. Times are microseconds on the caller's clock.
public struct RTPElementaryStreams {
    public var video: ContainerWriter.VideoTrack? { videoTrack.track }
    public private(set) var audio: ContainerWriter.AudioTrack?
    /// Pictures lost beyond recovery (a gap outlived the jitter buffer) and Opus packets
    /// that would not decode, since the last `takeDropped`.
    private var framesDropped = 0
    private var assembler = FrameAssembler(codec: .h264)
    private var videoTrack = AnnexBVideoTrack()
    private var announcement = TrackAnnouncement()
    private var videoClock = RTPClock(rate: 90_000)
    private var lastVideoTime: Int64?
    private var audioClock = RTPClock(rate: Int64(OpusDecoder.sampleRate))
    private var opus: OpusDecoder?
    private var aac: AACEncoder?
    /// The RTP timestamp the next Opus packet should carry, and where the encoder's own
    /// clock (samples fed since it opened) sits on the feed's clock.
    private var nextAudioTimestamp: Int64?
    private var audioOrigin: Int64 = 0
    private var samplesEncoded: Int64 = 0
    /// Lost audio up to this long is filled with silence to keep the AAC clock on the RTP
    /// clock; a longer hole (the encoder paused) moves the origin instead.
    static let longestAudioFill: Int64 = 48_000

    public init() {}

    /// What was dropped since the last call, for the stream's figures.
    public mutating func takeDropped() -> Int {
        defer { framesDropped = 0 }
        return framesDropped
    }

    /// True once when the pictures cannot go on without a keyframe: ask the publisher (PLI).
    public mutating func takeKeyframeRequest() -> Bool {
        defer { assembler.keyframeNeeded = false }
        return assembler.keyframeNeeded
    }

    public mutating func video(_ packet: RTPPacket, arrival: Int64) -> [ElementaryOutput] {
        let before = assembler.framesDropped
        var outputs: [ElementaryOutput] = []
        for frame in assembler.insert(packet, now: .microseconds(arrival)) {
            var time = videoClock.time(of: videoClock.unwrap(frame.rtpTimestamp), arrival: arrival)
            // WebRTC's H.264 has no B-frames: presentation order is decoding order, and a
            // muxer needs it strictly increasing.
            if let last = lastVideoTime, time <= last { time = last + 1 }
            lastVideoTime = time
            let (picture, changed) = videoTrack.take(frame.data, isKeyframe: frame.isKeyframe)
            guard video != nil else { continue }
            if changed { outputs.append(.tracks) }
            outputs.append(.packet(ProgramPacket(kind: .video, data: picture, pts: time, dts: time, isKeyframe: frame.isKeyframe)))
        }
        framesDropped += assembler.framesDropped - before
        return announcement.pass(outputs, videoKnown: video != nil, audioKnown: audio != nil)
    }

    public mutating func audio(_ packet: RTPPacket, arrival: Int64) throws(CodecError) -> [ElementaryOutput] {
        guard !packet.payload.isEmpty else { return [] }
        var outputs: [ElementaryOutput] = []
        if aac == nil {
            let encoder = try AACEncoder()
            opus = try OpusDecoder()
            aac = encoder
            audio = ContainerWriter.AudioTrack(sampleRate: AACEncoder.sampleRate, channels: 2, audioSpecificConfig: encoder.audioSpecificConfig)
            outputs.append(.tracks)
        }
        guard let opus, let aac else { return [] }
        let timestamp = audioClock.unwrap(packet.timestamp)
        let time = audioClock.time(of: timestamp, arrival: arrival)
        var samples: [Float] = []
        if let expected = nextAudioTimestamp {
            let gap = timestamp - expected
            if gap < 0, gap >= -Self.longestAudioFill {
                // A late or repeated packet: its time has been filled already.
                return announcement.pass(outputs, videoKnown: video != nil, audioKnown: true)
            } else if gap >= 0, gap <= Self.longestAudioFill {
                samples = [Float](repeating: 0, count: Int(gap) * OpusDecoder.channels)
            } else {
                audioOrigin = time - samplesEncoded * 1_000_000 / Int64(AACEncoder.sampleRate)
            }
        } else {
            audioOrigin = time
        }
        let decoded: [Float]
        do {
            decoded = try opus.decode(packet.payload)
        } catch {
            framesDropped += 1
            return announcement.pass(outputs, videoKnown: video != nil, audioKnown: true)
        }
        nextAudioTimestamp = timestamp + Int64(decoded.count / OpusDecoder.channels)
        samples += decoded
        samplesEncoded += Int64(samples.count / OpusDecoder.channels)
        for var encoded in try aac.encode(samples) {
            encoded.pts += audioOrigin
            encoded.dts += audioOrigin
            outputs.append(.packet(encoded))
        }
        return announcement.pass(outputs, videoKnown: video != nil, audioKnown: true)
    }
}

/// One RTP clock (32 bits, wrapping, random start) as microseconds on the feed's clock:
/// anchored at the first packet's arrival, then following the sender's clock. A sender
/// whose clock strays more than `tolerance` from arrival times (it restarted) is anchored again.
struct RTPClock {
    let rate: Int64
    private var newest: (timestamp: UInt32, unwrapped: Int64)?
    private var anchor: (rtp: Int64, time: Int64)?
    static let tolerance: Int64 = 5_000_000

    init(rate: Int64) {
        self.rate = rate
    }

    /// The timestamp on a 64-bit count that does not wrap.
    mutating func unwrap(_ timestamp: UInt32) -> Int64 {
        guard let newest else {
            newest = (timestamp, Int64(timestamp))
            return Int64(timestamp)
        }
        let delta = Int64(Int32(bitPattern: timestamp &- newest.timestamp))
        let value = newest.unwrapped + delta
        if delta > 0 { self.newest = (timestamp, value) }
        return value
    }

    mutating func time(of unwrapped: Int64, arrival: Int64) -> Int64 {
        if let anchor {
            let time = anchor.time + (unwrapped - anchor.rtp) * 1_000_000 / rate
            if abs(time - arrival) <= Self.tolerance { return time }
        }
        anchor = (unwrapped, arrival)
        return arrival
    }
}
