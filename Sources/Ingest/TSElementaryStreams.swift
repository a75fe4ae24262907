import FLV
import MediaCodecs

/// Turns an MPEG-TS feed's demuxed packets (H.264 or HEVC Annex B, AAC in ADTS) into the packets
/// the outputs take, with the tracks they describe: parameter sets from the stream itself,
/// an AudioSpecificConfig built from the ADTS header.
public struct TSElementaryStreams {
    public var video: ContainerWriter.VideoTrack? { videoTrack.track }
    public private(set) var audio: ContainerWriter.AudioTrack?
    public private(set) var unsupportedVideo: String?
    public private(set) var unsupportedAudio: String?
    private var videoTrack = AnnexBVideoTrack()
    private var announcement = TrackAnnouncement()

    public init() {}

    public mutating func take(_ packet: ContainerReader.Packet) -> [ElementaryOutput] {
        announcement.pass(convert(packet), videoKnown: video != nil, audioKnown: audio != nil)
    }

    private mutating func convert(_ packet: ContainerReader.Packet) -> [ElementaryOutput] {
        switch packet.codec {
        case .h264:
            return takeVideo(packet, codec: .h264)
        case .hevc:
            return takeVideo(packet, codec: .hevc)
        case .aac:
            return takeAudio(packet)
        case .other(let name):
            // Data streams (KLV, SCTE-35) ride along in TS; only a foreign picture or sound matters.
            if ["av1", "mpeg2video", "vp9"].contains(name) {
                unsupportedVideo = "video codec \(name): HLS passthrough carries H.264 and HEVC"
            } else if ["mp2", "mp3", "ac3", "eac3", "opus"].contains(name) {
                unsupportedAudio = "audio codec \(name): HLS passthrough carries AAC"
            }
            return []
        }
    }

    private mutating func takeVideo(_ packet: ContainerReader.Packet, codec: VideoCodec) -> [ElementaryOutput] {
        if videoTrack.codec != codec { videoTrack = AnnexBVideoTrack(codec: codec) }
        let (picture, changed) = videoTrack.take(packet.data, isKeyframe: packet.isKeyframe)
        guard video != nil else { return [] }
        return (changed ? [.tracks] : []) + [.packet(ProgramPacket(kind: .video, data: picture, pts: packet.pts, dts: packet.dts, isKeyframe: packet.isKeyframe))]
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
