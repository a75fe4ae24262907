import CFFmpeg

/// Writes video and AAC with libavformat: into a file as fragmented MP4 for recordings (a
/// fragment at least every second, flushed as it is made, so a crash loses at most the
/// last one) or as MPEG-TS for HLS segments (H.264 and HEVC only); or into memory as CMAF
/// for fMP4 HLS (`cmafSegments`): an initialization section, then one fragment per segment,
/// cut where the caller says; or as Matroska for a participant's tracks kept as they came
/// (VP8, VP9, H.264 with Opus).
public final class ContainerWriter {
    public enum Format: Sendable {
        case fragmentedMP4
        case mpegTS
        /// Fragmented MP4 in memory, a fragment per `cutSegment`.
        case cmafSegments
        case matroska

        var name: String {
            switch self {
            case .fragmentedMP4, .cmafSegments: "mp4"
            case .mpegTS: "mpegts"
            case .matroska: "matroska"
            }
        }
    }

    public struct VideoTrack: Sendable {
        /// H.264 or HEVC, both in Annex B; AV1 or VP9.
        public var codec: VideoCodec
        public var width: Int
        public var height: Int
        public var framesPerSecond: Int
        /// The codec's configuration: SPS and PPS (HEVC: VPS, SPS and PPS) in Annex B; AV1's
        /// AV1CodecConfigurationRecord; VP9's VPCodecConfigurationRecord.
        public var parameterSets: [UInt8]

        public init(codec: VideoCodec = .h264, width: Int, height: Int, framesPerSecond: Int = 30, parameterSets: [UInt8]) {
            self.codec = codec
            self.width = width
            self.height = height
            self.framesPerSecond = framesPerSecond
            self.parameterSets = parameterSets
        }
    }

    public struct AudioTrack: Sendable {
        public enum Codec: Sendable { case aac, opus }

        public var codec: Codec
        public var sampleRate: Int
        public var channels: Int
        /// AAC's AudioSpecificConfig; empty for Opus, whose OpusHead is made here.
        public var audioSpecificConfig: [UInt8]

        public init(codec: Codec = .aac, sampleRate: Int = 48_000, channels: Int = 2, audioSpecificConfig: [UInt8]) {
            self.codec = codec
            self.sampleRate = sampleRate
            self.channels = channels
            self.audioSpecificConfig = audioSpecificConfig
        }

        /// Opus as WebRTC sends it: 48 kHz, stereo, 20 ms packets.
        public static let opus = AudioTrack(codec: .opus, channels: 2, audioSpecificConfig: [])

        /// RFC 7845 §5.1's identification header: what Matroska keeps as Opus's codec private data.
        var opusHead: [UInt8] {
            let rate = UInt32(sampleRate)
            return Array("OpusHead".utf8) + [1, UInt8(channels), 0, 0,
                                              UInt8(rate & 0xFF), UInt8(rate >> 8 & 0xFF), UInt8(rate >> 16 & 0xFF), UInt8(rate >> 24), 0, 0, 0]
        }
    }

    public let path: String
    private var context: UnsafeMutablePointer<AVFormatContext>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var videoIndex: Int32 = -1
    private var audioIndex: Int32 = -1
    private var finished = false
    /// A write failed: the file is closed without a trailer.
    private var broken = false
    private var lastDTS: [Int32: Int64] = [:]
    /// Each packet's length in microseconds, which fragmented MP4 wants for a fragment's last sample.
    private var durations: [Int32: Int64] = [:]

    /// Whether MPEG-TS segments can carry `codec`; the others need fMP4.
    public static func mpegTSCarries(_ codec: VideoCodec) -> Bool {
        codec == .h264 || codec == .hevc
    }

    /// The initialization section (`ftyp` and `moov`) of a `cmafSegments` writer.
    public private(set) var initialization: [UInt8] = []
    private let format: Format

    /// `path` names the file, or for `cmafSegments` only the stream in errors.
    public init(format: Format, path: String, video: VideoTrack?, audio: AudioTrack?) throws(CodecError) {
        self.path = path
        self.format = format
        let videoCodecID = switch video?.codec {
        case .h264?, nil: AV_CODEC_ID_H264
        case .hevc?: AV_CODEC_ID_HEVC
        case .av1? where format != .mpegTS: AV_CODEC_ID_AV1
        case .vp9? where format != .mpegTS: AV_CODEC_ID_VP9
        case .vp8? where format == .matroska: AV_CODEC_ID_VP8
        case let other?: throw CodecError("\(other.rawValue) is not written here\(format == .mpegTS ? " in MPEG-TS" : "")")
        }
        // libav* would otherwise narrate to stderr; failures come back as errors.
        av_log_set_level(AV_LOG_ERROR)
        var context: UnsafeMutablePointer<AVFormatContext>?
        guard avformat_alloc_output_context2(&context, nil, format.name, path) >= 0, let context else {
            throw CodecError("libavformat has no \(format.name) muxer")
        }
        self.context = context
        if let video {
            guard let stream = avformat_new_stream(context, nil) else { throw CodecError("out of memory") }
            let parameters = stream.pointee.codecpar!
            parameters.pointee.codec_type = AVMEDIA_TYPE_VIDEO
            parameters.pointee.codec_id = videoCodecID
            parameters.pointee.width = Int32(video.width)
            parameters.pointee.height = Int32(video.height)
            // The MP4 muxer derives VP9's vpcC from these; its extradata would be ignored.
            parameters.pointee.format = AV_PIX_FMT_YUV420P.rawValue
            if video.codec == .vp9, video.parameterSets.count >= 3 {
                parameters.pointee.profile = Int32(video.parameterSets[0])
                parameters.pointee.level = Int32(video.parameterSets[1])
            } else {
                Self.setExtradata(parameters, video.parameterSets)
            }
            stream.pointee.time_base = AVRational(num: 1, den: 90_000)
            videoIndex = stream.pointee.index
            durations[videoIndex] = 1_000_000 / Int64(max(1, video.framesPerSecond))
        }
        if let audio {
            guard let stream = avformat_new_stream(context, nil) else { throw CodecError("out of memory") }
            let parameters = stream.pointee.codecpar!
            parameters.pointee.codec_type = AVMEDIA_TYPE_AUDIO
            parameters.pointee.sample_rate = Int32(audio.sampleRate)
            parameters.pointee.ch_layout = audio.channels == 1 ? tally_layout_mono() : tally_layout_stereo()
            let samplesPerPacket = audio.codec == .aac ? 1024 : audio.sampleRate / 50
            parameters.pointee.frame_size = Int32(samplesPerPacket)
            switch audio.codec {
            case .aac:
                parameters.pointee.codec_id = AV_CODEC_ID_AAC
                Self.setExtradata(parameters, audio.audioSpecificConfig)
            case .opus:
                parameters.pointee.codec_id = AV_CODEC_ID_OPUS
                Self.setExtradata(parameters, audio.opusHead)
            }
            stream.pointee.time_base = AVRational(num: 1, den: Int32(audio.sampleRate))
            audioIndex = stream.pointee.index
            durations[audioIndex] = Int64(samplesPerPacket) * 1_000_000 / Int64(audio.sampleRate)
        }
        let opened = format == .cmafSegments ? avio_open_dyn_buf(&context.pointee.pb) : avio_open(&context.pointee.pb, path, AVIO_FLAG_WRITE)
        guard opened >= 0 else { throw CodecError("cannot open \(path): \(AVErrorText(opened))") }
        context.pointee.flush_packets = 1
        var options: OpaquePointer?
        defer { av_dict_free(&options) }
        switch format {
        case .fragmentedMP4:
            av_dict_set(&options, "movflags", "frag_keyframe+empty_moov+default_base_moof", 0)
            av_dict_set(&options, "frag_duration", "1000000", 0)
        case .cmafSegments:
            av_dict_set(&options, "movflags", "frag_custom+empty_moov+default_base_moof+skip_trailer", 0)
        case .mpegTS:
            av_dict_set(&options, "mpegts_copyts", "1", 0)
        case .matroska:
            // A cluster at most every second, so a crash loses little; cues at the end.
            av_dict_set(&options, "cluster_time_limit", "1000", 0)
        }
        let header = avformat_write_header(context, &options)
        guard header >= 0 else {
            broken = true
            throw CodecError("cannot start \(path): \(AVErrorText(header))")
        }
        packet = av_packet_alloc()
        if format == .cmafSegments { initialization = try takeBuffered() }
    }

    /// What the muxer wrote into memory since the last call, and a fresh buffer for what follows.
    private func takeBuffered() throws(CodecError) -> [UInt8] {
        guard let context else { return [] }
        var buffer: UnsafeMutablePointer<UInt8>?
        let size = avio_close_dyn_buf(context.pointee.pb, &buffer)
        defer { av_free(buffer) }
        context.pointee.pb = nil
        let opened = avio_open_dyn_buf(&context.pointee.pb)
        guard opened >= 0 else { throw CodecError("\(path): \(AVErrorText(opened))") }
        guard let buffer, size > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: buffer, count: Int(size)))
    }

    /// Closes the fragment of everything written since the last cut (`moof` and `mdat`) and
    /// returns it: one media segment of a `cmafSegments` writer.
    public func cutSegment() throws(CodecError) -> [UInt8] {
        guard format == .cmafSegments, !finished, let context else { return [] }
        let status = av_write_frame(context, nil)
        guard status >= 0 else { throw CodecError("cutting \(path): \(AVErrorText(status))") }
        return try takeBuffered()
    }

    deinit {
        try? finish()
        av_packet_free(&packet)
    }

    private static func setExtradata(_ parameters: UnsafeMutablePointer<AVCodecParameters>, _ bytes: [UInt8]) {
        guard !bytes.isEmpty, let buffer = av_mallocz(bytes.count + Int(AV_INPUT_BUFFER_PADDING_SIZE)) else { return }
        buffer.copyMemory(from: bytes, byteCount: bytes.count)
        parameters.pointee.extradata = buffer.assumingMemoryBound(to: UInt8.self)
        parameters.pointee.extradata_size = Int32(bytes.count)
    }

    /// Adds one packet of the program; packets of a kind this file has no track for are skipped.
    public func write(_ program: ProgramPacket) throws(CodecError) {
        guard !finished, let context, let packet else { return }
        let index = program.kind == .video ? videoIndex : audioIndex
        guard index >= 0 else { return }
        let timeBase = context.pointee.streams[Int(index)]!.pointee.time_base
        let micros = AVRational(num: 1, den: 1_000_000)
        var dts = av_rescale_q(program.dts, micros, timeBase)
        // Muxers refuse a timestamp that does not move forward.
        if let last = lastDTS[index], dts <= last { dts = last + 1 }
        lastDTS[index] = dts
        let pts = max(dts, av_rescale_q(program.pts, micros, timeBase))
        guard av_new_packet(packet, Int32(program.data.count)) >= 0 else { throw CodecError("out of memory") }
        program.data.withUnsafeBufferPointer { packet.pointee.data.update(from: $0.baseAddress!, count: $0.count) }
        packet.pointee.stream_index = index
        packet.pointee.pts = pts
        packet.pointee.dts = dts
        packet.pointee.duration = av_rescale_q(durations[index] ?? 0, micros, timeBase)
        packet.pointee.flags = program.isKeyframe ? AV_PKT_FLAG_KEY : 0
        // A CMAF fragment holds each track's samples apart anyway; written straight through,
        // none wait in an interleaving queue across a cut.
        let status: Int32
        if format == .cmafSegments {
            status = av_write_frame(context, packet)
            av_packet_unref(packet)
        } else {
            status = av_interleaved_write_frame(context, packet)
        }
        guard status >= 0 else {
            broken = true
            throw CodecError("writing \(path): \(AVErrorText(status))")
        }
    }

    /// Completes the file (trailer, index) and closes it. Safe to call twice.
    public func finish() throws(CodecError) {
        guard !finished, let context else { return }
        finished = true
        // After a refused write the muxer's state is not to be trusted: libavformat's MP4
        // trailer then dereferences what it never set up. What was written stays playable.
        let trailer = broken ? 0 : av_write_trailer(context)
        if format == .cmafSegments {
            // Whatever was not cut into a segment is dropped with the buffer.
            var buffer: UnsafeMutablePointer<UInt8>?
            _ = avio_close_dyn_buf(context.pointee.pb, &buffer)
            av_free(buffer)
            context.pointee.pb = nil
        } else {
            avio_closep(&context.pointee.pb)
        }
        avformat_free_context(context)
        self.context = nil
        guard trailer >= 0 else { throw CodecError("finishing \(path): \(AVErrorText(trailer))") }
    }
}
