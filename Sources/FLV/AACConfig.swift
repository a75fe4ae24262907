/// AAC's AudioSpecificConfig (ISO 14496-3 §1.6.2.1): what an FLV sequence header carries, and
/// what an ADTS header's fields amount to.
public struct AACConfig: Equatable, Sendable {
    public static let sampleRates = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350]

    public var sampleRate: Int
    public var channels: Int
    /// The config as decoders and containers take it.
    public var bytes: [UInt8]

    public init(audioSpecificConfig bytes: [UInt8]) throws(FLVError) {
        guard bytes.count >= 2 else { throw FLVError.truncated("AudioSpecificConfig") }
        var bits = BitReader(bytes)
        if bits.bits(5) == 31 { _ = bits.bits(6) }
        guard let index = bits.bits(4) else { throw FLVError.truncated("AudioSpecificConfig") }
        if index == 15 {
            guard let explicit = bits.bits(24) else { throw FLVError.truncated("explicit AAC sample rate") }
            sampleRate = explicit
        } else {
            guard index < Self.sampleRates.count else { throw FLVError.unsupported("AAC sample rate index \(index)") }
            sampleRate = Self.sampleRates[index]
        }
        let configuration = bits.bits(4) ?? 0
        guard sampleRate > 0, (1...7).contains(configuration) else { throw FLVError.unsupported("AAC with channel configuration \(configuration)") }
        channels = configuration == 7 ? 8 : configuration
        self.bytes = bytes
    }

    /// The two-byte config for an object type, a sample-rate index and a channel configuration.
    public init?(objectType: Int, rateIndex: Int, channelConfiguration: Int) {
        guard (1...30).contains(objectType), rateIndex < Self.sampleRates.count, (1...7).contains(channelConfiguration) else { return nil }
        sampleRate = Self.sampleRates[rateIndex]
        channels = channelConfiguration == 7 ? 8 : channelConfiguration
        let packed = objectType << 11 | rateIndex << 7 | channelConfiguration << 3
        bytes = [UInt8(packed >> 8), UInt8(packed & 0xFF)]
    }
}
