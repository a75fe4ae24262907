import CFFmpeg

/// Demuxes a container arriving as a byte stream (MPEG-TS from an SRT encoder) with
/// libavformat, pulling bytes through `read` as it needs them. No probing: the format is
/// named, and streams are known from the container's own tables (the TS PMT).
public final class ContainerReader {
    public enum Codec: Sendable, Equatable {
        case h264
        case hevc
        case aac
        case other(String)
    }

    public struct Packet: Sendable {
        public var codec: Codec
        /// H.264 in Annex B; AAC as the container carries it (ADTS in MPEG-TS).
        public var data: [UInt8]
        /// Microseconds on the container's clock.
        public var pts: Int64
        public var dts: Int64
        public var isKeyframe: Bool

        public init(codec: Codec, data: [UInt8], pts: Int64, dts: Int64, isKeyframe: Bool) {
            self.codec = codec
            self.data = data
            self.pts = pts
            self.dts = dts
            self.isKeyframe = isKeyframe
        }
    }

    /// Fills the buffer with up to its size in bytes; returns how many, 0 at the end of the
    /// stream, or a negative number when reading failed.
    public typealias Read = (UnsafeMutableRawBufferPointer) -> Int

    private final class Source {
        let read: Read
        init(read: @escaping Read) { self.read = read }
    }

    private var context: UnsafeMutablePointer<AVFormatContext>?
    private var io: UnsafeMutablePointer<AVIOContext>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private let source: Source
    private static let bufferSize: Int32 = 64 << 10

    public init(format: String = "mpegts", read: @escaping Read) throws(CodecError) {
        av_log_set_level(AV_LOG_ERROR)
        source = Source(read: read)
        guard let input = av_find_input_format(format) else { throw CodecError("libavformat has no \(format) demuxer") }
        guard let buffer = av_malloc(Int(Self.bufferSize)) else { throw CodecError("out of memory") }
        let opaque = Unmanaged.passUnretained(source).toOpaque()
        io = avio_alloc_context(buffer.assumingMemoryBound(to: UInt8.self), Self.bufferSize, 0, opaque, { opaque, bytes, size in
            guard let opaque, let bytes else { return tally_averror_eof() }
            let source = Unmanaged<Source>.fromOpaque(opaque).takeUnretainedValue()
            let count = source.read(UnsafeMutableRawBufferPointer(start: bytes, count: Int(size)))
            return count > 0 ? Int32(count) : tally_averror_eof()
        }, nil, nil)
        guard let io else {
            av_free(buffer)
            throw CodecError("out of memory")
        }
        context = avformat_alloc_context()
        guard let context else { throw CodecError("out of memory") }
        context.pointee.pb = io
        context.pointee.flags |= AVFMT_FLAG_CUSTOM_IO
        var opened: UnsafeMutablePointer<AVFormatContext>? = context
        let status = avformat_open_input(&opened, nil, input, nil)
        guard status >= 0 else {
            // avformat_open_input frees the context when it fails.
            self.context = nil
            throw CodecError("cannot read \(format): \(AVErrorText(status))")
        }
        packet = av_packet_alloc()
    }

    deinit {
        av_packet_free(&packet)
        avformat_close_input(&context)
        if let io {
            av_freep(&io.pointee.buffer)
            var pointer: UnsafeMutablePointer<AVIOContext>? = io
            avio_context_free(&pointer)
        }
    }

    /// The next packet, or nil at the end of the stream.
    public func next() throws(CodecError) -> Packet? {
        guard let context, let packet else { return nil }
        while true {
            let status = av_read_frame(context, packet)
            if status == tally_averror_eof() { return nil }
            guard status >= 0 else { throw CodecError("demuxing: \(AVErrorText(status))") }
            defer { av_packet_unref(packet) }
            guard let stream = context.pointee.streams[Int(packet.pointee.stream_index)], packet.pointee.size > 0 else { continue }
            let parameters = stream.pointee.codecpar.pointee
            let codec: Codec = switch parameters.codec_id {
            case AV_CODEC_ID_H264: .h264
            case AV_CODEC_ID_HEVC: .hevc
            case AV_CODEC_ID_AAC: .aac
            default: .other(String(cString: avcodec_get_name(parameters.codec_id)))
            }
            let micros = AVRational(num: 1, den: 1_000_000)
            let nopts = tally_nopts_value()
            let rawDTS = packet.pointee.dts != nopts ? packet.pointee.dts : packet.pointee.pts
            guard rawDTS != nopts else { continue }
            let dts = av_rescale_q(rawDTS, stream.pointee.time_base, micros)
            let pts = packet.pointee.pts != nopts ? av_rescale_q(packet.pointee.pts, stream.pointee.time_base, micros) : dts
            let data = [UInt8](UnsafeBufferPointer(start: packet.pointee.data, count: Int(packet.pointee.size)))
            return Packet(codec: codec, data: data, pts: pts, dts: dts, isKeyframe: packet.pointee.flags & AV_PKT_FLAG_KEY != 0)
        }
    }
}
