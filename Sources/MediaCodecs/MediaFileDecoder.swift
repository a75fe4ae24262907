import CFFmpeg

/// A video file a host uploaded (a clip), read for the program: its best video and audio
/// streams decoded with libav*, pictures as I420 no larger than asked, sound as interleaved
/// 48 kHz stereo Float, each with its time in seconds from the file's start.
///
/// Only the two container families a studio takes are read (MP4/MOV, Matroska/WebM), by
/// their named demuxer and from the local file alone: libavformat's other demuxers
/// (playlists that open URLs, image sequences, concat lists) are never reached by probing.
public final class MediaFileDecoder {
    public enum Container: String, Sendable, CaseIterable {
        /// MP4 and QuickTime MOV.
        case mp4
        /// Matroska and WebM.
        case matroska

        var demuxer: String {
            switch self {
            case .mp4: "mov"
            case .matroska: "matroska"
            }
        }

        /// Recognised by the first bytes, never by what the client says.
        public static func sniff(_ head: [UInt8]) -> Container? {
            if head.starts(with: [0x1A, 0x45, 0xDF, 0xA3]) { return .matroska }
            guard head.count >= 8 else { return nil }
            let box = String(decoding: head[4..<8], as: UTF8.self)
            return ["ftyp", "moov", "mdat", "wide", "free", "skip"].contains(box) ? .mp4 : nil
        }
    }

    public struct Info: Sendable, Equatable {
        /// The picture's size as decoded, before any scaling down.
        public var width: Int
        public var height: Int
        public var durationSeconds: Double
        public var videoCodec: String
        public var hasAudio: Bool
    }

    public enum Output: Sendable {
        case picture(VideoFrame, seconds: Double)
        case sound([Float], seconds: Double)
    }

    public let info: Info
    private var format: UnsafeMutablePointer<AVFormatContext>?
    private var video: UnsafeMutablePointer<AVCodecContext>?
    private var audio: UnsafeMutablePointer<AVCodecContext>?
    private let videoIndex: Int32
    private let audioIndex: Int32
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var frame: UnsafeMutablePointer<AVFrame>?
    private var scaler: OpaquePointer?
    private let resampler = StereoResampler()
    private let maxSize: (width: Int, height: Int)
    private var pending: [Output] = []
    private var drained = false

    /// Opens `path`, which must hold a video stream libavcodec decodes; pictures come out
    /// scaled to fit `maxWidth` × `maxHeight` when larger.
    public init(path: String, container: Container, maxWidth: Int = 1920, maxHeight: Int = 1080) throws(CodecError) {
        av_log_set_level(AV_LOG_ERROR)
        maxSize = (maxWidth, maxHeight)
        guard let demuxer = av_find_input_format(container.demuxer) else { throw CodecError("libavformat has no \(container.demuxer) demuxer") }
        var options: OpaquePointer?
        av_dict_set(&options, "protocol_whitelist", "file", 0)
        defer { av_dict_free(&options) }
        var opening: UnsafeMutablePointer<AVFormatContext>?
        let opened = avformat_open_input(&opening, path, demuxer, &options)
        guard opened >= 0, let format = opening else { throw CodecError("the file cannot be read as \(container.rawValue): \(AVErrorText(opened))") }
        self.format = format
        let found = avformat_find_stream_info(format, nil)
        guard found >= 0 else {
            avformat_close_input(&self.format)
            throw CodecError("the file's streams cannot be read: \(AVErrorText(found))")
        }
        videoIndex = av_find_best_stream(format, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0)
        audioIndex = av_find_best_stream(format, AVMEDIA_TYPE_AUDIO, -1, videoIndex, nil, 0)
        do throws(CodecError) {
            guard videoIndex >= 0 else { throw CodecError("the file has no video stream") }
            video = try Self.openDecoder(format.pointee.streams[Int(videoIndex)]!)
            audio = audioIndex >= 0 ? try? Self.openDecoder(format.pointee.streams[Int(audioIndex)]!) : nil
        } catch {
            avcodec_free_context(&video)
            avformat_close_input(&self.format)
            throw error
        }
        let parameters = format.pointee.streams[Int(videoIndex)]!.pointee.codecpar!.pointee
        let duration = format.pointee.duration > 0 ? Double(format.pointee.duration) / Double(AV_TIME_BASE) : 0
        info = Info(width: Int(parameters.width), height: Int(parameters.height), durationSeconds: duration,
                    videoCodec: String(cString: avcodec_get_name(parameters.codec_id)), hasAudio: audio != nil)
        packet = av_packet_alloc()
        frame = av_frame_alloc()
    }

    deinit {
        avcodec_free_context(&video)
        avcodec_free_context(&audio)
        avformat_close_input(&format)
        av_packet_free(&packet)
        av_frame_free(&frame)
        sws_freeContext(scaler)
    }

    private static func openDecoder(_ stream: UnsafeMutablePointer<AVStream>) throws(CodecError) -> UnsafeMutablePointer<AVCodecContext> {
        let parameters = stream.pointee.codecpar!
        guard let codec = avcodec_find_decoder(parameters.pointee.codec_id) else {
            throw CodecError("\(String(cString: avcodec_get_name(parameters.pointee.codec_id))) cannot be decoded here")
        }
        guard let context = avcodec_alloc_context3(codec) else { throw CodecError("out of memory") }
        guard avcodec_parameters_to_context(context, parameters) >= 0 else {
            var freeing: UnsafeMutablePointer<AVCodecContext>? = context
            avcodec_free_context(&freeing)
            throw CodecError("the stream's codec parameters are not usable")
        }
        context.pointee.thread_count = 1
        context.pointee.pkt_timebase = stream.pointee.time_base
        let opened = avcodec_open2(context, codec, nil)
        guard opened >= 0 else {
            var freeing: UnsafeMutablePointer<AVCodecContext>? = context
            avcodec_free_context(&freeing)
            throw CodecError("\(String(cString: codec.pointee.name)) did not open: \(AVErrorText(opened))")
        }
        return context
    }

    /// The next picture or piece of sound in file order; nil once the file has ended.
    public func next() throws(CodecError) -> Output? {
        while pending.isEmpty {
            guard !drained, let format, let packet else { return nil }
            let read = av_read_frame(format, packet)
            if read < 0 {
                // The end (or a damaged tail): what the decoders still hold comes out, then nil.
                drained = true
                try receive(from: video, stream: videoIndex, flushing: true)
                try receive(from: audio, stream: audioIndex, flushing: true)
                continue
            }
            defer { av_packet_unref(packet) }
            let index = packet.pointee.stream_index
            guard let decoder = index == videoIndex ? video : index == audioIndex ? audio : nil else { continue }
            let sent = avcodec_send_packet(decoder, packet)
            // A damaged packet costs its picture, not the clip.
            if sent < 0 && sent != tally_averror_eagain() { continue }
            try receive(from: decoder, stream: index, flushing: false)
        }
        return pending.removeFirst()
    }

    /// Back to the first picture, for a clip that loops.
    public func rewind() throws(CodecError) {
        guard let format else { return }
        let sought = av_seek_frame(format, -1, format.pointee.start_time == tally_nopts_value() ? 0 : format.pointee.start_time, AVSEEK_FLAG_BACKWARD)
        guard sought >= 0 else { throw CodecError("the clip cannot go back to its start: \(AVErrorText(sought))") }
        if let video { avcodec_flush_buffers(video) }
        if let audio { avcodec_flush_buffers(audio) }
        pending.removeAll()
        drained = false
    }

    private func receive(from decoder: UnsafeMutablePointer<AVCodecContext>?, stream index: Int32, flushing: Bool) throws(CodecError) {
        guard let decoder, let frame, let format else { return }
        if flushing { avcodec_send_packet(decoder, nil) }
        while avcodec_receive_frame(decoder, frame) >= 0 {
            defer { av_frame_unref(frame) }
            let stream = format.pointee.streams[Int(index)]!.pointee
            let start = stream.start_time == tally_nopts_value() ? 0 : stream.start_time
            let timestamp = frame.pointee.best_effort_timestamp == tally_nopts_value() ? start : frame.pointee.best_effort_timestamp
            let seconds = max(0, Double(timestamp - start) * Double(stream.time_base.num) / Double(max(1, stream.time_base.den)))
            if index == videoIndex {
                if let picture = convert(frame) { pending.append(.picture(picture, seconds: seconds)) }
            } else {
                let samples = try resampler.convert(frame)
                if !samples.isEmpty { pending.append(.sound(samples, seconds: seconds)) }
            }
        }
    }

    /// Any pixel format and size to I420 that fits the most asked for, even-sized.
    private func convert(_ frame: UnsafeMutablePointer<AVFrame>) -> VideoFrame? {
        let width = Int(frame.pointee.width), height = Int(frame.pointee.height)
        guard width > 0, height > 0 else { return nil }
        let scale = min(1, Double(maxSize.width) / Double(width), Double(maxSize.height) / Double(height))
        let outWidth = max(2, Int(Double(width) * scale) & ~1), outHeight = max(2, Int(Double(height) * scale) & ~1)
        scaler = sws_getCachedContext(scaler, Int32(width), Int32(height), AVPixelFormat(rawValue: frame.pointee.format),
                                      Int32(outWidth), Int32(outHeight), AV_PIX_FMT_YUV420P, SWS_BILINEAR, nil, nil, nil)
        guard let scaler else { return nil }
        var picture = VideoFrame(width: outWidth, height: outHeight, fill: (0, 128, 128))
        let chroma = picture.chromaWidth
        let scaled = picture.y.withUnsafeMutableBufferPointer { y in
            picture.u.withUnsafeMutableBufferPointer { u in
                picture.v.withUnsafeMutableBufferPointer { v in
                    let planes: [UnsafeMutablePointer<UInt8>?] = [y.baseAddress, u.baseAddress, v.baseAddress, nil]
                    let strides: [Int32] = [Int32(outWidth), Int32(chroma), Int32(chroma), 0]
                    return withUnsafeBytes(of: frame.pointee.data) { sourcePlanes in
                        withUnsafeBytes(of: frame.pointee.linesize) { sourceStrides in
                            sws_scale(scaler, sourcePlanes.bindMemory(to: UnsafePointer<UInt8>?.self).baseAddress,
                                      sourceStrides.bindMemory(to: Int32.self).baseAddress, 0, Int32(height), planes, strides)
                        }
                    }
                }
            }
        }
        return scaled > 0 ? picture : nil
    }
}

/// A still picture as JPEG (libavcodec's MJPEG encoder): a clip's thumbnail.
public enum JPEGEncoder {
    public static func encode(_ picture: VideoFrame, quality: Int32 = 5) throws(CodecError) -> [UInt8] {
        guard let codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG) else { throw CodecError("libavcodec has no JPEG encoder") }
        var context = avcodec_alloc_context3(codec)
        defer { avcodec_free_context(&context) }
        guard let context else { throw CodecError("out of memory") }
        context.pointee.width = Int32(picture.width)
        context.pointee.height = Int32(picture.height)
        // Full-range 4:2:0: what JPEG means by YUV; a limited-range picture looks a shade flat, no more.
        context.pointee.pix_fmt = AV_PIX_FMT_YUVJ420P
        context.pointee.time_base = AVRational(num: 1, den: 25)
        context.pointee.flags |= AV_CODEC_FLAG_QSCALE
        context.pointee.global_quality = quality * FF_QP2LAMBDA
        let opened = avcodec_open2(context, codec, nil)
        guard opened >= 0 else { throw CodecError("the JPEG encoder did not open: \(AVErrorText(opened))") }
        var frame = av_frame_alloc()
        var packet = av_packet_alloc()
        defer {
            av_frame_free(&frame)
            av_packet_free(&packet)
        }
        guard let frame, let packet else { throw CodecError("out of memory") }
        frame.pointee.width = Int32(picture.width)
        frame.pointee.height = Int32(picture.height)
        frame.pointee.format = AV_PIX_FMT_YUVJ420P.rawValue
        frame.pointee.quality = quality * FF_QP2LAMBDA
        var y = picture.y, u = picture.u, v = picture.v
        let sent = y.withUnsafeMutableBufferPointer { yp in
            u.withUnsafeMutableBufferPointer { up in
                v.withUnsafeMutableBufferPointer { vp -> Int32 in
                    frame.pointee.data.0 = yp.baseAddress
                    frame.pointee.data.1 = up.baseAddress
                    frame.pointee.data.2 = vp.baseAddress
                    frame.pointee.linesize.0 = Int32(picture.width)
                    frame.pointee.linesize.1 = Int32(picture.chromaWidth)
                    frame.pointee.linesize.2 = Int32(picture.chromaWidth)
                    defer { frame.pointee.data = (nil, nil, nil, nil, nil, nil, nil, nil) }
                    return avcodec_send_frame(context, frame)
                }
            }
        }
        guard sent >= 0 else { throw CodecError("encoding the JPEG: \(AVErrorText(sent))") }
        avcodec_send_frame(context, nil)
        guard avcodec_receive_packet(context, packet) >= 0, let data = packet.pointee.data else { throw CodecError("the JPEG encoder gave nothing") }
        return Array(UnsafeBufferPointer(start: data, count: Int(packet.pointee.size)))
    }
}
