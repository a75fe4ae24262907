import CFFmpeg

/// What a recorded file holds, as read while remuxing it.
public struct MediaFileSummary: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// From the first to the last packet's presentation time.
    public var durationSeconds: Double
    public var videoCodec: String?
    public var audioCodec: String?
}

/// Rewrites a recording made as a stream (a browser's MediaRecorder WebM, which has no
/// duration and no index) into a file players can seek: the same packets, no decoding, in
/// Matroska/WebM with its duration and cues. A file cut short (a page killed mid-write) is
/// kept up to its last whole packet.
public enum MediaFileRemux {
    public static func remux(input: String, output: String, format: String = "webm") throws(CodecError) -> MediaFileSummary {
        av_log_set_level(AV_LOG_ERROR)
        var opening: UnsafeMutablePointer<AVFormatContext>?
        let opened = avformat_open_input(&opening, input, nil, nil)
        guard opened >= 0, let source = opening else { throw CodecError("cannot read the recording: \(AVErrorText(opened))") }
        defer { avformat_close_input(&opening) }
        let found = avformat_find_stream_info(source, nil)
        guard found >= 0 else { throw CodecError("the recording's streams cannot be read: \(AVErrorText(found))") }

        var sink: UnsafeMutablePointer<AVFormatContext>?
        guard avformat_alloc_output_context2(&sink, nil, format, output) >= 0, let sink else { throw CodecError("libavformat has no \(format) muxer") }
        defer {
            if sink.pointee.pb != nil { avio_closep(&sink.pointee.pb) }
            avformat_free_context(sink)
        }
        var summary = MediaFileSummary(width: 0, height: 0, durationSeconds: 0)
        // Input stream index → output stream index, for the audio and video kept.
        var mapping = [Int32](repeating: -1, count: Int(source.pointee.nb_streams))
        for index in 0..<Int(source.pointee.nb_streams) {
            guard let stream = source.pointee.streams[index], let parameters = stream.pointee.codecpar else { continue }
            let type = parameters.pointee.codec_type
            guard type == AVMEDIA_TYPE_VIDEO || type == AVMEDIA_TYPE_AUDIO else { continue }
            guard let copy = avformat_new_stream(sink, nil), avcodec_parameters_copy(copy.pointee.codecpar, parameters) >= 0 else {
                throw CodecError("out of memory")
            }
            copy.pointee.codecpar.pointee.codec_tag = 0
            let name = String(cString: avcodec_get_name(parameters.pointee.codec_id))
            if type == AVMEDIA_TYPE_VIDEO {
                summary.width = Int(parameters.pointee.width)
                summary.height = Int(parameters.pointee.height)
                summary.videoCodec = name
            } else {
                summary.audioCodec = name
            }
            mapping[index] = copy.pointee.index
        }
        guard mapping.contains(where: { $0 >= 0 }) else { throw CodecError("the recording has neither audio nor video") }
        let openedOutput = avio_open(&sink.pointee.pb, output, AVIO_FLAG_WRITE)
        guard openedOutput >= 0 else { throw CodecError("cannot write \(output): \(AVErrorText(openedOutput))") }
        let header = avformat_write_header(sink, nil)
        guard header >= 0 else { throw CodecError("the recording's codecs cannot go into \(format): \(AVErrorText(header))") }

        var packet = av_packet_alloc()
        defer { av_packet_free(&packet) }
        guard let packet else { throw CodecError("out of memory") }
        let nopts = tally_nopts_value()
        var first: Double?
        var last: Double = 0
        while av_read_frame(source, packet) >= 0 {
            defer { av_packet_unref(packet) }
            let index = Int(packet.pointee.stream_index)
            guard mapping.indices.contains(index), mapping[index] >= 0, let from = source.pointee.streams[index],
                  let to = sink.pointee.streams[Int(mapping[index])] else { continue }
            let time = packet.pointee.pts != nopts ? packet.pointee.pts : packet.pointee.dts
            if time != nopts {
                let seconds = Double(time) * av_q2d(from.pointee.time_base)
                first = min(first ?? seconds, seconds)
                last = max(last, seconds)
            }
            av_packet_rescale_ts(packet, from.pointee.time_base, to.pointee.time_base)
            packet.pointee.stream_index = mapping[index]
            packet.pointee.pos = -1
            let written = av_interleaved_write_frame(sink, packet)
            guard written >= 0 else { throw CodecError("writing the recording: \(AVErrorText(written))") }
        }
        let trailer = av_write_trailer(sink)
        guard trailer >= 0 else { throw CodecError("finishing the recording: \(AVErrorText(trailer))") }
        summary.durationSeconds = max(0, last - (first ?? last))
        return summary
    }
}
