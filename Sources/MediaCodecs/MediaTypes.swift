/// A decoded picture in I420 (YUV 4:2:0, planar), tightly packed: the luma plane is
/// `width × height`, each chroma plane `⌈width/2⌉ × ⌈height/2⌉`.
public struct VideoFrame: Sendable {
    public let width: Int
    public let height: Int
    public var y: [UInt8]
    public var u: [UInt8]
    public var v: [UInt8]

    public var chromaWidth: Int { (width + 1) / 2 }
    public var chromaHeight: Int { (height + 1) / 2 }

    public init(width: Int, height: Int, y: [UInt8], u: [UInt8], v: [UInt8]) {
        precondition(width > 0 && height > 0, "a frame has an area")
        self.width = width
        self.height = height
        self.y = y
        self.u = u
        self.v = v
    }

    /// A frame of one colour, given in YUV.
    public init(width: Int, height: Int, fill: (y: UInt8, u: UInt8, v: UInt8)) {
        self.init(width: width, height: height, y: [UInt8](repeating: fill.y, count: width * height),
                  u: [UInt8](repeating: fill.u, count: ((width + 1) / 2) * ((height + 1) / 2)),
                  v: [UInt8](repeating: fill.v, count: ((width + 1) / 2) * ((height + 1) / 2)))
    }
}

/// Video codecs the compositor can decode. HEVC and AV1 come only from encoders' feeds
/// (enhanced RTMP, MPEG-TS); no RTP payload format for them is ever negotiated.
public enum VideoCodec: String, Sendable {
    case vp8 = "VP8"
    case vp9 = "VP9"
    case h264 = "H264"
    case hevc = "H265"
    case av1 = "AV1"

    /// From an SDP codec name, case-insensitively.
    public init?(sdpName: String) {
        self.init(rawValue: sdpName.uppercased())
    }
}

/// One coded frame, reassembled from RTP: the whole bitstream of one picture (Annex B for
/// H.264), with its RTP timestamp.
public struct EncodedFrame: Sendable {
    public var data: [UInt8]
    public var rtpTimestamp: UInt32
    public var isKeyframe: Bool

    public init(data: [UInt8], rtpTimestamp: UInt32, isKeyframe: Bool) {
        self.data = data
        self.rtpTimestamp = rtpTimestamp
        self.isKeyframe = isKeyframe
    }
}

/// An encoded access unit of the program, as every output takes it. Times are in
/// microseconds on the program's clock, which starts at zero when the program does.
public struct ProgramPacket: Sendable {
    public enum Kind: Sendable { case video, audio }

    public var kind: Kind
    /// H.264 and HEVC in Annex B (start codes), AV1 as a temporal unit of low-overhead OBUs,
    /// VP9 as a frame; raw AAC frames for audio.
    public var data: [UInt8]
    public var pts: Int64
    public var dts: Int64
    public var isKeyframe: Bool

    public init(kind: Kind, data: [UInt8], pts: Int64, dts: Int64, isKeyframe: Bool) {
        self.kind = kind
        self.data = data
        self.pts = pts
        self.dts = dts
        self.isKeyframe = isKeyframe
    }
}

/// What a decoder or encoder reports when the C library refuses.
public struct CodecError: Error, CustomStringConvertible, Equatable {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// What every output needs to know about the encoded program before its first packet.
public struct ProgramFormat: Sendable {
    public var width: Int
    public var height: Int
    public var framesPerSecond: Int
    public var videoBitrateKbps: Int
    public var parameterSets: [UInt8]
    public var audioSpecificConfig: [UInt8]

    public init(width: Int, height: Int, framesPerSecond: Int, videoBitrateKbps: Int, parameterSets: [UInt8], audioSpecificConfig: [UInt8]) {
        self.width = width
        self.height = height
        self.framesPerSecond = framesPerSecond
        self.videoBitrateKbps = videoBitrateKbps
        self.parameterSets = parameterSets
        self.audioSpecificConfig = audioSpecificConfig
    }

    public var videoTrack: ContainerWriter.VideoTrack {
        .init(width: width, height: height, framesPerSecond: framesPerSecond, parameterSets: parameterSets)
    }
    public var audioTrack: ContainerWriter.AudioTrack { .init(audioSpecificConfig: audioSpecificConfig) }
}
