import CFFmpeg

/// Decoded sound of any rate, layout and sample format to what the compositor mixes:
/// interleaved stereo Float at 48 kHz. The conversion is rebuilt when the input changes.
final class StereoResampler {
    static let outputRate: Int32 = 48_000
    private var resampler: OpaquePointer?
    private var input: (rate: Int32, channels: Int32, format: Int32)?

    deinit { swr_free(&resampler) }

    func convert(_ frame: UnsafeMutablePointer<AVFrame>) throws(CodecError) -> [Float] {
        let input = (rate: frame.pointee.sample_rate, channels: frame.pointee.ch_layout.nb_channels, format: frame.pointee.format)
        if self.input.map({ $0 != input }) ?? true {
            swr_free(&resampler)
            var output = tally_layout_stereo()
            let status = swr_alloc_set_opts2(&resampler, &output, AV_SAMPLE_FMT_FLT, Self.outputRate,
                                             &frame.pointee.ch_layout, AVSampleFormat(rawValue: input.format), input.rate, 0, nil)
            guard status >= 0, swr_init(resampler) >= 0 else { throw CodecError("cannot convert \(input.rate) Hz sound to 48 kHz stereo") }
            self.input = input
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
        guard converted >= 0 else { throw CodecError("resampling sound: \(AVErrorText(converted))") }
        samples.removeLast(samples.count - Int(converted) * 2)
        return samples
    }
}
