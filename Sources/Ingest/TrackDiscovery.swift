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

/// The video track of an H.264 Annex B feed, read from the parameter sets its keyframes
/// carry; the picture size comes from the SPS, since neither TS nor RTP states it.
struct AnnexBVideoTrack {
    private(set) var track: ContainerWriter.VideoTrack?

    /// Takes one picture: returns it with the last parameter sets put in front when a
    /// keyframe came without them (so any segment can start on it), and whether the
    /// track changed. Other pictures are passed on unread.
    mutating func take(_ picture: [UInt8], isKeyframe: Bool) -> (picture: [UInt8], changed: Bool) {
        guard isKeyframe else { return (picture, false) }
        let sets = AnnexB.nalUnits(picture).filter { [7, 8].contains(AnnexB.type($0)) }
        guard sets.contains(where: { AnnexB.type($0) == 7 }), sets.contains(where: { AnnexB.type($0) == 8 }) else {
            return ((track?.parameterSets ?? []) + picture, false)
        }
        let parameterSets = sets.flatMap { [0, 0, 0, 1] + $0 }
        guard parameterSets != track?.parameterSets else { return (picture, false) }
        let size = sets.first { AnnexB.type($0) == 7 }.flatMap { H264PictureSize(sps: $0) }
        track = ContainerWriter.VideoTrack(width: size?.width ?? 0, height: size?.height ?? 0, framesPerSecond: 30, parameterSets: parameterSets)
        return (picture, true)
    }
}
