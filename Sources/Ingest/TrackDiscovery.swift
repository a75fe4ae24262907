import FLV
import MediaCodecs

/// Feeds that announce no configuration up front (MPEG-TS, RTP) are read until both tracks
/// are known, or a second of video passes with no audio, so outputs open once with both.
struct TrackAnnouncement {
    private var held: [ElementaryOutput] = []
    private(set) var announced = false
    static let audioWait: Int64 = 1_000_000

    /// What to hand on of `outputs`: nothing while the tracks are being found, then the
    /// tracks and everything held, then everything as it comes.
    mutating func pass(_ outputs: [ElementaryOutput], videoKnown: Bool, audioKnown: Bool) -> [ElementaryOutput] {
        if announced { return outputs }
        held += outputs.filter { if case .packet = $0 { true } else { false } }
        let videoTimes = held.compactMap { output -> Int64? in
            if case .packet(let packet) = output, packet.kind == .video { packet.dts } else { nil }
        }
        let waited = (videoTimes.max() ?? 0) - (videoTimes.min() ?? 0)
        guard videoKnown, audioKnown || waited >= Self.audioWait else { return [] }
        announced = true
        defer { held = [] }
        return [.tracks] + held
    }
}

/// The video track of an H.264 or HEVC Annex B feed, read from the parameter sets its
/// keyframes carry; the picture size comes from the SPS, since neither TS nor RTP states it.
struct AnnexBVideoTrack {
    let codec: VideoCodec
    private(set) var track: ContainerWriter.VideoTrack?

    init(codec: VideoCodec = .h264) {
        self.codec = codec
    }

    /// Takes one picture: returns it with the last parameter sets put in front when a
    /// keyframe came without them (so any segment can start on it), and whether the
    /// track changed. Other pictures are passed on unread.
    mutating func take(_ picture: [UInt8], isKeyframe: Bool) -> (picture: [UInt8], changed: Bool) {
        guard isKeyframe else { return (picture, false) }
        let needed: Set<UInt8> = codec == .hevc ? HEVC.parameterSetTypes : [7, 8]
        let sets = AnnexB.nalUnits(picture).filter { needed.contains(type($0)) }
        guard Set(sets.map(type)) == needed else { return ((track?.parameterSets ?? []) + picture, false) }
        let parameterSets = sets.flatMap { [0, 0, 0, 1] + $0 }
        guard parameterSets != track?.parameterSets else { return (picture, false) }
        let size = codec == .hevc ? sets.first { type($0) == HEVC.sps }.flatMap { PictureSize(hevcSPS: $0) }
            : sets.first { type($0) == 7 }.flatMap { PictureSize(h264SPS: $0) }
        track = ContainerWriter.VideoTrack(codec: codec, width: size?.width ?? 0, height: size?.height ?? 0, framesPerSecond: 30,
                                           parameterSets: parameterSets)
        return (picture, true)
    }

    private func type(_ unit: ArraySlice<UInt8>) -> UInt8 {
        codec == .hevc ? HEVC.type(unit) : AnnexB.type(unit)
    }
}
