import FLV
import MediaCodecs

/// Turns an MPEG-TS feed's demuxed packets (H.264 Annex B, AAC in ADTS) into the packets
/// the outputs take, with the tracks they describe: parameter sets from the stream itself,
/// an AudioSpecificConfig built from the ADTS header.
public struct TSElementaryStreams {
    public private(set) var video: ContainerWriter.VideoTrack?
    public private(set) var audio: ContainerWriter.AudioTrack?
    public private(set) var unsupportedVideo: String?
    public private(set) var unsupportedAudio: String?
    /// Unlike FLV, TS announces no configuration up front: the first packets are held until
    /// both tracks are known (or a second passes with no audio), so outputs open once with both.
    private var held: [ElementaryOutput] = []
    private var announced = false
    static let audioWait: Int64 = 1_000_000

    public init() {}

    public mutating func take(_ packet: ContainerReader.Packet) -> [ElementaryOutput] {
        let outputs = convert(packet)
        if announced { return outputs }
        held += outputs.filter { if case .packet = $0 { true } else { false } }
        let videoTimes = held.compactMap { output -> Int64? in
            if case .packet(let packet) = output, packet.kind == .video { packet.dts } else { nil }
        }
        let waited = (videoTimes.max() ?? 0) - (videoTimes.min() ?? 0)
        guard video != nil, audio != nil || waited >= Self.audioWait else { return [] }
        announced = true
        defer { held = [] }
        return [.tracks] + held
    }

    private mutating func convert(_ packet: ContainerReader.Packet) -> [ElementaryOutput] {
        switch packet.codec {
        case .h264:
            return takeVideo(packet)
        case .aac:
            return takeAudio(packet)
        case .other(let name):
            // Data streams (KLV, SCTE-35) ride along in TS; only a foreign picture or sound matters.
            if ["hevc", "av1", "mpeg2video", "vp9"].contains(name) {
                unsupportedVideo = "video codec \(name): HLS passthrough carries H.264"
            } else if ["mp2", "mp3", "ac3", "eac3", "opus"].contains(name) {
                unsupportedAudio = "audio codec \(name): HLS passthrough carries AAC"
            }
            return []
        }
    }

    private mutating func takeVideo(_ packet: ContainerReader.Packet) -> [ElementaryOutput] {
        var outputs: [ElementaryOutput] = []
        var data = packet.data
        // Parameter sets ride with keyframes; other pictures are passed on unread.
        let sets = packet.isKeyframe ? AnnexB.nalUnits(data).filter { [7, 8].contains(AnnexB.type($0)) } : []
        if sets.contains(where: { AnnexB.type($0) == 7 }), sets.contains(where: { AnnexB.type($0) == 8 }) {
            let parameterSets = sets.flatMap { [0, 0, 0, 1] + $0 }
            if parameterSets != video?.parameterSets {
                // TS says nothing of the picture's size; the SPS does.
                let size = sets.first { AnnexB.type($0) == 7 }.flatMap { H264PictureSize(sps: $0) }
                video = ContainerWriter.VideoTrack(width: size?.width ?? 0, height: size?.height ?? 0, framesPerSecond: 30, parameterSets: parameterSets)
                outputs.append(.tracks)
            }
        } else if packet.isKeyframe, let video {
            data = video.parameterSets + data
        }
        guard video != nil else { return outputs }
        outputs.append(.packet(ProgramPacket(kind: .video, data: data, pts: packet.pts, dts: packet.dts, isKeyframe: packet.isKeyframe)))
        return outputs
    }

    private mutating func takeAudio(_ packet: ContainerReader.Packet) -> [ElementaryOutput] {
        guard let frame = ADTSFrame(packet.data) else { return [] }
        var outputs: [ElementaryOutput] = []
        if frame.config.bytes != audio?.audioSpecificConfig {
            audio = ContainerWriter.AudioTrack(sampleRate: frame.config.sampleRate, channels: frame.config.channels, audioSpecificConfig: frame.config.bytes)
            outputs.append(.tracks)
        }
        outputs.append(.packet(ProgramPacket(kind: .audio, data: Array(packet.data[frame.headerSize..<frame.length]), pts: packet.pts, dts: packet.dts, isKeyframe: true)))
        return outputs
    }
}

/// One AAC frame's ADTS header (ISO 14496-3 §1.A.2.2).
public struct ADTSFrame: Equatable, Sendable {
    public var headerSize: Int
    /// Header and payload.
    public var length: Int
    public var config: AACConfig

    public init?(_ bytes: [UInt8]) {
        guard bytes.count >= 7, bytes[0] == 0xFF, bytes[1] & 0xF0 == 0xF0 else { return nil }
        let protectionAbsent = bytes[1] & 1 == 1
        let profile = Int(bytes[2] >> 6)
        let rateIndex = Int(bytes[2] >> 2 & 0x0F)
        let channelConfig = Int(bytes[2] & 1) << 2 | Int(bytes[3] >> 6)
        let length = Int(bytes[3] & 0x03) << 11 | Int(bytes[4]) << 3 | Int(bytes[5] >> 5)
        headerSize = protectionAbsent ? 7 : 9
        guard length > headerSize, length <= bytes.count,
              let config = AACConfig(objectType: profile + 1, rateIndex: rateIndex, channelConfiguration: channelConfig) else { return nil }
        self.length = length
        self.config = config
    }
}
