import FLV
import MediaCodecs
import RTMP

/// What a feed's converter hands on: its tracks changed, or a packet.
public enum ElementaryOutput: Sendable {
    /// The tracks changed (a sequence header arrived): outputs must reopen with these.
    case tracks
    case packet(ProgramPacket)
}

/// Turns an RTMP publisher's FLV tags into the packets the outputs take: H.264 or HEVC in
/// Annex B, AV1 as OBUs, VP9 frames, raw AAC; with the tracks they describe. Keyframes carry
/// their parameter sets (AV1: the sequence header) in band, so any segment can start on
/// one. Timestamps become microseconds on an unwrapped clock.
public struct FLVElementaryStreams {
    private(set) var video: ContainerWriter.VideoTrack?
    private(set) var audio: ContainerWriter.AudioTrack?
    /// Why the video could not be used (an unsupported codec): the stream cannot go on.
    private(set) var unsupportedVideo: String?
    /// Why the audio is left out (an unsupported format): the video goes on without it.
    private(set) var unsupportedAudio: String?
    private var lengthSize = 4
    private var width = 0
    private var height = 0
    private var framesPerSecond = 30
    private var clock = UnwrappedClock()

    mutating func metadata(_ properties: [String: AMF0Value]) {
        if let value = properties["width"]?.number, value > 0, value < 16384 { width = Int(value) & ~1 }
        if let value = properties["height"]?.number, value > 0, value < 16384 { height = Int(value) & ~1 }
        if let value = properties["framerate"]?.number, value >= 1, value <= 240 { framesPerSecond = Int(value.rounded()) }
        if var track = video {
            track.width = width
            track.height = height
            track.framesPerSecond = framesPerSecond
            video = track
        }
    }

    mutating func video(timestamp: UInt32, body: [UInt8]) throws(FLVError) -> [ElementaryOutput] {
        let tag = try FLVVideoTag.parse(body[...])
        let codec: VideoCodec
        switch tag.codec {
        case .avc, .fourCC("avc1"): codec = .h264
        case .fourCC("hvc1"): codec = .hevc
        case .fourCC("av01"): codec = .av1
        case .fourCC("vp09"): codec = .vp9
        case .fourCC(let name):
            unsupportedVideo = "video codec \(name): passthrough carries H.264, HEVC, AV1 and VP9"
            return []
        case .legacy(let id):
            unsupportedVideo = "FLV video codec \(id): passthrough carries H.264, HEVC, AV1 and VP9"
            return []
        }
        switch tag.kind {
        case .sequenceHeader:
            let configuration: [UInt8]
            var size = lengthSize
            var picture: (width: Int, height: Int)?
            switch codec {
            case .hevc:
                let record = try HEVCDecoderConfiguration.parse(tag.payload)
                (configuration, size) = (record.parameterSets, record.lengthSize)
            case .av1:
                let record = try AV1CodecConfiguration.parse(tag.payload)
                configuration = record.record
                picture = record.sequenceHeader.map { ($0.width, $0.height) }
            case .vp9:
                configuration = try VP9CodecConfiguration.parse(tag.payload).record
            default:
                let record = try AVCDecoderConfiguration.parse(tag.payload)
                (configuration, size) = (record.parameterSets, record.lengthSize)
            }
            guard configuration != video?.parameterSets || size != lengthSize || codec != video?.codec else { return [] }
            lengthSize = size
            // onMetaData's size wins; an AV1 sequence header's stands in when there was none.
            if width == 0 || height == 0, let picture {
                width = picture.width & ~1
                height = picture.height & ~1
            }
            video = ContainerWriter.VideoTrack(codec: codec, width: width, height: height, framesPerSecond: framesPerSecond, parameterSets: configuration)
            return [.tracks]
        case .frame:
            // Pictures of another codec than the sequence header announced cannot be decoded.
            guard let track = video, track.codec == codec else { return [] }
            let data: [UInt8]
            switch codec {
            case .av1:
                // Keyframes carry the sequence header, so any segment and any decoder can start on one.
                guard let units = AV1.obus(tag.payload), !units.isEmpty else { throw FLVError.truncated("AV1 temporal unit") }
                let needsHeader = tag.isKeyframe && !units.contains { $0.type == AV1.sequenceHeader }
                let header = needsHeader ? Array(try AV1CodecConfiguration.parse(track.parameterSets[...]).configurationOBUs) : []
                data = units.filter { $0.type != AV1.temporalDelimiter }.reduce(into: header) { $0 += $1.bytes }
            case .vp9:
                data = Array(tag.payload)
            default:
                var annexB = try FLVVideoTag.annexB(lengthPrefixed: tag.payload, lengthSize: lengthSize)
                if tag.isKeyframe, !AnnexB.nalUnits(annexB).contains(where: { codec == .hevc ? HEVC.type($0) == HEVC.sps : AnnexB.type($0) == 7 }) {
                    annexB = track.parameterSets + annexB
                }
                data = annexB
            }
            guard !data.isEmpty else { return [] }
            let dts = clock.microseconds(timestamp)
            let pts = dts + Int64(tag.compositionTime) * 1000
            return [.packet(ProgramPacket(kind: .video, data: data, pts: pts, dts: dts, isKeyframe: tag.isKeyframe))]
        case .endOfSequence, .other:
            return []
        }
    }

    mutating func audio(timestamp: UInt32, body: [UInt8]) throws(FLVError) -> [ElementaryOutput] {
        let tag = try FLVAudioTag.parse(body[...])
        guard tag.format == 10 else {
            unsupportedAudio = "FLV audio format \(tag.format): HLS passthrough carries AAC"
            return []
        }
        if tag.isSequenceHeader {
            let config = Array(tag.payload)
            guard config != audio?.audioSpecificConfig else { return [] }
            let described = try AACConfig(audioSpecificConfig: config)
            audio = ContainerWriter.AudioTrack(sampleRate: described.sampleRate, channels: described.channels, audioSpecificConfig: config)
            return [.tracks]
        }
        guard audio != nil, !tag.payload.isEmpty else { return [] }
        let time = clock.microseconds(timestamp)
        return [.packet(ProgramPacket(kind: .audio, data: Array(tag.payload), pts: time, dts: time, isKeyframe: true))]
    }
}

/// RTMP's 32-bit millisecond timestamps on a clock that does not wrap after 49 days.
struct UnwrappedClock {
    private var last: UInt32?
    private var wraps: Int64 = 0

    mutating func microseconds(_ timestamp: UInt32) -> Int64 {
        if let last, timestamp < last, last - timestamp > 0x8000_0000 { wraps += 1 }
        last = timestamp
        return (wraps << 32 + Int64(timestamp)) * 1000
    }
}
