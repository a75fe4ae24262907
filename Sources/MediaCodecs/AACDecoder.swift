import CFFmpeg

/// AAC from an encoder's feed (an ingest stream on stage) to what the compositor mixes:
/// interleaved stereo Float at 48 kHz, whatever rate and channels the feed has.
public final class AACDecoder {
    private var context: UnsafeMutablePointer<AVCodecContext>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var frame: UnsafeMutablePointer<AVFrame>?
    private let resampler = StereoResampler()

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
            samples += try resampler.convert(frame)
        }
        return samples
    }
}
