import COpus

/// Opus to 48 kHz stereo, interleaved Float samples. One instance per track.
public final class OpusDecoder {
    private let decoder: OpaquePointer
    public static let sampleRate = 48_000
    public static let channels = 2
    /// The longest Opus packet: 120 ms.
    private static let maxSamplesPerChannel = 5_760
    private var output = [Float](repeating: 0, count: maxSamplesPerChannel * channels)

    public init() throws(CodecError) {
        var error: Int32 = 0
        guard let decoder = opus_decoder_create(Int32(Self.sampleRate), Int32(Self.channels), &error), error == OPUS_OK else {
            throw CodecError("opus decoder: \(String(cString: opus_strerror(error)))")
        }
        self.decoder = decoder
    }

    deinit { opus_decoder_destroy(decoder) }

    /// The samples of one packet; an empty payload conceals one lost 20 ms packet.
    public func decode(_ payload: ArraySlice<UInt8>) throws(CodecError) -> [Float] {
        let concealing = payload.isEmpty
        let samples = Array(payload).withUnsafeBufferPointer { bytes in
            output.withUnsafeMutableBufferPointer { out in
                opus_decode_float(decoder, concealing ? nil : bytes.baseAddress, Int32(bytes.count), out.baseAddress!,
                                  concealing ? 960 : Int32(Self.maxSamplesPerChannel), 0)
            }
        }
        guard samples >= 0 else { throw CodecError("opus: \(String(cString: opus_strerror(samples)))") }
        return Array(output[0..<Int(samples) * Self.channels])
    }
}
