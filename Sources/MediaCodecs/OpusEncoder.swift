import COpus

/// 48 kHz stereo to Opus, 20 ms a packet: the program's sound for WebRTC players. It takes
/// interleaved Float samples of any count and emits whole packets.
public final class OpusEncoder {
    public static let samplesPerPacket = 960
    private let encoder: OpaquePointer
    private var pending: [Float] = []
    private var output = [UInt8](repeating: 0, count: 1500)

    public init() throws(CodecError) {
        var error: Int32 = 0
        guard let encoder = opus_encoder_create(Int32(OpusDecoder.sampleRate), Int32(OpusDecoder.channels), OPUS_APPLICATION_AUDIO, &error),
              error == OPUS_OK else {
            throw CodecError("opus encoder: \(String(cString: opus_strerror(error)))")
        }
        self.encoder = encoder
    }

    deinit { opus_encoder_destroy(encoder) }

    /// Adds interleaved stereo samples; returns the packets now complete, oldest first.
    public func encode(_ interleaved: [Float]) throws(CodecError) -> [[UInt8]] {
        pending += interleaved
        let frameLength = Self.samplesPerPacket * OpusDecoder.channels
        var packets: [[UInt8]] = []
        var consumed = 0
        while pending.count - consumed >= frameLength {
            let size = pending.withUnsafeBufferPointer { samples in
                output.withUnsafeMutableBufferPointer { bytes in
                    opus_encode_float(encoder, samples.baseAddress! + consumed, Int32(Self.samplesPerPacket), bytes.baseAddress!, Int32(bytes.count))
                }
            }
            guard size > 0 else { throw CodecError("opus: \(String(cString: opus_strerror(size)))") }
            packets.append(Array(output[0..<Int(size)]))
            consumed += frameLength
        }
        pending.removeFirst(consumed)
        return packets
    }
}
