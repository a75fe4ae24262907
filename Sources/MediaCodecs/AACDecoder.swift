import CFFmpeg

/// AAC from an encoder's feed (an ingest stream on stage) to what the compositor mixes:
/// interleaved stereo Float at 48 kHz, whatever rate and channels the feed has.
public final class AACDecoder {
    private var context: UnsafeMutablePointer<AVCodecContext>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var frame: UnsafeMutablePointer<AVFrame>?
    private var resampler: OpaquePointer?
    /// The input format the resampler was set up for: rebuilt when the stream changes it.
    private var resamplerInput: (rate: Int32, channels: Int32, format: Int32)?

    public init(audioSpecificConfig: [UInt8]) throws(CodecError) {
        guard let codec = avcodec_find_decoder(AV_CODEC_ID_AAC) else { throw CodecError("libavcodec has no AAC decoder") }
        context = avcodec_alloc_context3(codec)
        guard let context else { throw CodecError("out of memory") }
        if !audioSpecificConfig.isEmpty, let extradata = av_mallocz(audioSpecificConfig.count + Int(AV_INPUT_BUFFER_PADDING_SIZE)) {
            extradata.copyMemory(from: audioSpecificConfig, byteCount: audioSpecificConfig.count)
            context.pointee.extradata = extradata.assumingMemoryBound(to: UInt8.self)
            context.pointee.extradata_size = Int32(audioSpecificConfig.count)
        }
        let opened = avcodec_open2(context, codec, nil)
        guard opened >= 0 else {
            avcodec_free_context(&self.context)
            throw CodecError("AAC decoder did not open: \(AVErrorText(opened))")
        }
        packet = av_packet_alloc()
        frame = av_frame_alloc()
    }

    deinit {
        avcodec_free_context(&context)
        av_packet_free(&packet)
        av_frame_free(&frame)
        swr_free(&resampler)
    }

    /// One raw AAC frame in; the samples it decodes to out (none while the decoder primes).
    public func decode(_ data: [UInt8]) throws(CodecError) -> [Float] {
        guard let context, let packet, let frame else { return [] }
        let sent = data.withUnsafeBufferPointer { bytes -> Int32 in
            packet.pointee.data = UnsafeMutablePointer(mutating: bytes.baseAddress)
            packet.pointee.size = Int32(bytes.count)
            defer {
                packet.pointee.data = nil
                packet.pointee.size = 0
            }
            return avcodec_send_packet(context, packet)
        }
        guard sent >= 0 else { throw CodecError("AAC: \(AVErrorText(sent))") }
        var samples: [Float] = []
        while avcodec_receive_frame(context, frame) >= 0 {
            defer { av_frame_unref(frame) }
            samples += try resample(frame)
        }
        return samples
    }

    private func resample(_ frame: UnsafeMutablePointer<AVFrame>) throws(CodecError) -> [Float] {
        let input = (rate: frame.pointee.sample_rate, channels: frame.pointee.ch_layout.nb_channels, format: frame.pointee.format)
        if resamplerInput.map({ $0 != input }) ?? true {
            swr_free(&resampler)
            var output = tally_layout_stereo()
            let status = swr_alloc_set_opts2(&resampler, &output, AV_SAMPLE_FMT_FLT, Int32(AACEncoder.sampleRate),
                                             &frame.pointee.ch_layout, AVSampleFormat(rawValue: input.format), input.rate, 0, nil)
            guard status >= 0, swr_init(resampler) >= 0 else { throw CodecError("cannot convert \(input.rate) Hz AAC to 48 kHz stereo") }
            resamplerInput = input
        }
        let capacity = Int(swr_get_out_samples(resampler, frame.pointee.nb_samples))
        guard capacity > 0 else { return [] }
        var samples = [Float](repeating: 0, count: capacity * 2)
        let converted = samples.withUnsafeMutableBytes { buffer -> Int32 in
            var plane: UnsafeMutablePointer<UInt8>? = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
            return frame.pointee.extended_data.withMemoryRebound(to: UnsafePointer<UInt8>?.self, capacity: Int(input.channels)) { planes in
                swr_convert(resampler, &plane, Int32(capacity), planes, frame.pointee.nb_samples)
            }
        }
        guard converted >= 0 else { throw CodecError("resampling AAC: \(AVErrorText(converted))") }
        samples.removeLast(samples.count - Int(converted) * 2)
        return samples
    }
}
