import Drawing
import MediaCodecs

/// What HLS viewers see while a publisher is away: a still card and silence, encoded once
/// as one closed two-second group of pictures and repeated on the stream's clock.
struct Slate: Sendable {
    static let groupDuration: Int64 = 2_000_000
    static let framesPerSecond = 30
    let video: ContainerWriter.VideoTrack
    let audio: ContainerWriter.AudioTrack
    /// One group: a keyframe then 59 frames, stamped from 0.
    let pictures: [ProgramPacket]
    /// One AAC frame of silence, repeated.
    let silence: [UInt8]

    init(width: Int, height: Int, text: String = "The stream will be back shortly") throws {
        var frame = VideoFrame(width: width, height: height, fill: (YUVColor.stage.y, YUVColor.stage.u, YUVColor.stage.v))
        let renderer = try TextRenderer()
        let mask = renderer.render(text, pixelHeight: max(16, height / 18), maxWidth: width * 9 / 10)
        frame.draw(mask, x: (width - mask.width) / 2, y: (height - mask.height) / 2, color: .white)
        let encoder = try H264Encoder(.init(width: width, height: height, framesPerSecond: Self.framesPerSecond, bitrateKbps: 300,
                                            keyframeIntervalSeconds: 2, preset: "veryfast", threads: 1))
        var pictures: [ProgramPacket] = []
        for index in 0..<Int(Self.groupDuration) * Self.framesPerSecond / 1_000_000 {
            if let packet = try encoder.encode(&frame, pts: Int64(index) * 1_000_000 / Int64(Self.framesPerSecond)) { pictures.append(packet) }
        }
        guard pictures.first?.isKeyframe == true, pictures.dropFirst().allSatisfy({ !$0.isKeyframe }) else {
            throw CodecError("the slate did not encode as one group of pictures")
        }
        self.pictures = pictures
        video = ContainerWriter.VideoTrack(width: width, height: height, framesPerSecond: Self.framesPerSecond, parameterSets: encoder.parameterSets)
        let aac = try AACEncoder(bitrate: 64_000)
        // Past the encoder's priming, every frame of silence is the same bytes.
        let frames = try aac.encode([Float](repeating: 0, count: AACEncoder.sampleRate / 2 * 2))
        guard let steady = frames.last else { throw CodecError("the AAC encoder gave no frame of silence") }
        silence = steady.data
        audio = ContainerWriter.AudioTrack(audioSpecificConfig: aac.audioSpecificConfig)
    }

    /// Group `index`'s packets, video and audio, on a clock that starts at group 0.
    func group(_ index: Int64) -> [ProgramPacket] {
        let start = index * Self.groupDuration
        var packets = pictures.map { picture in
            var packet = picture
            packet.pts += start
            packet.dts += start
            return packet
        }
        let frameLength = Int64(AACEncoder.samplesPerFrame) * 1_000_000
        let rate = Int64(AACEncoder.sampleRate)
        // Audio frames are numbered across groups so their spacing never drifts.
        var frame = (start * rate + frameLength - 1) / frameLength
        while frame * frameLength / rate < start + Self.groupDuration {
            let time = frame * frameLength / rate
            packets.append(ProgramPacket(kind: .audio, data: silence, pts: time, dts: time, isKeyframe: true))
            frame += 1
        }
        // At equal times the picture goes first, so a group opens on its keyframe.
        return packets.sorted { ($0.dts, $0.kind == .video ? 0 : 1) < ($1.dts, $1.kind == .video ? 0 : 1) }
    }
}
