import CFFmpeg

/// The program's audio encoder: AAC-LC (libavcodec's native encoder), 48 kHz stereo. It
/// takes interleaved Float samples of any count and emits 1024-sample frames.
public final class AACEncoder {
    public static let sampleRate = 48_000
    public static let samplesPerFrame = 1024
    private var context: UnsafeMutablePointer<AVCodecContext>?
    private var frame: UnsafeMutablePointer<AVFrame>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var pending: [Float] = []
    private var samplesIn: Int64 = 0
    /// The AudioSpecificConfig (ISO 14496-3) that FLV and MP4 carry as the decoder config.
    public let audioSpecificConfig: [UInt8]

    public init(bitrate: Int = 128_000) throws(CodecError) {
        guard let codec = avcodec_find_encoder(AV_CODEC_ID_AAC) else { throw CodecError("libavcodec has no AAC encoder") }
        context = avcodec_alloc_context3(codec)
        guard let context else { throw CodecError("out of memory") }
        context.pointee.sample_fmt = AV_SAMPLE_FMT_FLTP
        context.pointee.sample_rate = Int32(Self.sampleRate)
        context.pointee.ch_layout = tally_layout_stereo()
        context.pointee.bit_rate = Int64(bitrate)
        context.pointee.time_base = AVRational(num: 1, den: Int32(Self.sampleRate))
        context.pointee.flags |= Int32(AV_CODEC_FLAG_GLOBAL_HEADER)
        let opened = avcodec_open2(context, codec, nil)
        guard opened >= 0 else {
            avcodec_free_context(&self.context)
            throw CodecError("AAC encoder did not open: \(AVErrorText(opened))")
        }
        audioSpecificConfig = context.pointee.extradata.map { [UInt8](UnsafeBufferPointer(start: $0, count: Int(context.pointee.extradata_size))) } ?? []
        frame = av_frame_alloc()
        packet = av_packet_alloc()
    }

    deinit {
        avcodec_free_context(&context)
        av_frame_free(&frame)
        av_packet_free(&packet)
    }

    /// Adds interleaved stereo samples; returns the frames now complete, stamped in
    /// microseconds from the first sample ever given.
    public func encode(_ interleaved: [Float]) throws(CodecError) -> [ProgramPacket] {
        pending += interleaved
        var packets: [ProgramPacket] = []
        let frameLength = Self.samplesPerFrame * 2
        var consumed = 0
        while pending.count - consumed >= frameLength {
            try send(pending[consumed..<consumed + frameLength])
            consumed += frameLength
            try receive(into: &packets)
        }
        pending.removeFirst(consumed)
        return packets
    }

    private func send(_ samples: ArraySlice<Float>) throws(CodecError) {
        guard let frame else { throw CodecError("out of memory") }
        frame.pointee.nb_samples = Int32(Self.samplesPerFrame)
        frame.pointee.format = AV_SAMPLE_FMT_FLTP.rawValue
        frame.pointee.sample_rate = Int32(Self.sampleRate)
        frame.pointee.ch_layout = tally_layout_stereo()
        guard av_frame_get_buffer(frame, 0) >= 0 else { throw CodecError("out of memory") }
        defer { av_frame_unref(frame) }
        let left = UnsafeMutableRawPointer(frame.pointee.data.0!).assumingMemoryBound(to: Float.self)
        let right = UnsafeMutableRawPointer(frame.pointee.data.1!).assumingMemoryBound(to: Float.self)
        var index = samples.startIndex
        for sample in 0..<Self.samplesPerFrame {
            left[sample] = samples[index]
            right[sample] = samples[index + 1]
            index += 2
        }
        frame.pointee.pts = samplesIn
        samplesIn += Int64(Self.samplesPerFrame)
        let status = avcodec_send_frame(context, frame)
        guard status >= 0 else { throw CodecError("AAC encoder: \(AVErrorText(status))") }
    }

    private func receive(into packets: inout [ProgramPacket]) throws(CodecError) {
        while true {
            let status = avcodec_receive_packet(context, packet)
            if status == tally_averror_eagain() || status == tally_averror_eof() { return }
            guard status >= 0, let packet else { throw CodecError("AAC encoder: \(AVErrorText(status))") }
            defer { av_packet_unref(packet) }
            // The encoder's priming delay makes its first stamps negative; the program clock
            // starts at the first sample, so shift by that delay.
            let samples = packet.pointee.pts + Int64(context!.pointee.initial_padding)
            let micros = samples * 1_000_000 / Int64(Self.sampleRate)
            packets.append(ProgramPacket(kind: .audio, data: [UInt8](UnsafeBufferPointer(start: packet.pointee.data, count: Int(packet.pointee.size))),
                                         pts: micros, dts: micros, isKeyframe: true))
        }
    }
}
