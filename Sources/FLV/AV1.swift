/// AV1 as enhanced RTMP carries it (FourCC `av01`): temporal units of OBUs in the
/// low-overhead format (AV1 §5.3), introduced by an AV1CodecConfigurationRecord
/// (AV1-ISOBMFF §2.3) that holds the sequence header.
public enum AV1 {
    public static let sequenceHeader: UInt8 = 1
    public static let temporalDelimiter: UInt8 = 2

    /// The OBUs of a temporal unit, headers included, each with its type; nil when the bytes
    /// are not a well-formed run of OBUs (a size past the end, the forbidden bit set).
    public static func obus(_ bytes: ArraySlice<UInt8>) -> [(type: UInt8, bytes: ArraySlice<UInt8>)]? {
        var units: [(type: UInt8, bytes: ArraySlice<UInt8>)] = []
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let header = bytes[index]
            guard header & 0x80 == 0 else { return nil }
            let hasExtension = header & 0x04 != 0
            let hasSize = header & 0x02 != 0
            var payload = index + (hasExtension ? 2 : 1)
            guard payload <= bytes.endIndex else { return nil }
            var end = bytes.endIndex
            if hasSize {
                guard let (size, length) = leb128(bytes[payload...]), size <= bytes.endIndex - payload - length else { return nil }
                payload += length
                end = payload + size
            }
            units.append(((header >> 3) & 0x0F, bytes[index..<end]))
            index = end
        }
        return units
    }

    /// An unsigned LEB128 (AV1 §4.10.5) and the bytes it took; at most eight bytes.
    static func leb128(_ bytes: ArraySlice<UInt8>) -> (Int, Int)? {
        var value = 0
        for (count, byte) in bytes.prefix(8).enumerated() {
            value |= Int(byte & 0x7F) << (7 * count)
            if byte & 0x80 == 0 { return (value, count + 1) }
        }
        return nil
    }

    /// The payload of an OBU (after its header, extension and size).
    static func payload(_ obu: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        guard let header = obu.first else { return nil }
        var start = obu.startIndex + (header & 0x04 != 0 ? 2 : 1)
        guard start <= obu.endIndex else { return nil }
        if header & 0x02 != 0 {
            guard let (_, length) = leb128(obu[start...]) else { return nil }
            start += length
        }
        return obu[start...]
    }
}

/// What a sequence header (AV1 §5.5) says that a configuration record, a codec string and
/// a player need: profile, level and tier of the first operating point, bit depth, chroma
/// format, and the largest picture.
public struct AV1SequenceHeader: Sendable, Equatable {
    public var profile: Int
    public var level: Int
    public var tier: Int
    public var bitDepth: Int
    public var monochrome: Bool
    public var subsamplingX: Int
    public var subsamplingY: Int
    public var chromaSamplePosition: Int
    public var width: Int
    public var height: Int

    /// `obu`: a whole sequence header OBU, header included.
    public init?(obu: ArraySlice<UInt8>) {
        guard let first = obu.first, (first >> 3) & 0x0F == AV1.sequenceHeader, let payload = AV1.payload(obu) else { return nil }
        var bits = BitReader(Array(payload))
        guard let profile = bits.bits(3), bits.bits(1) != nil, let reduced = bits.bits(1) else { return nil }
        self.profile = profile
        var level = 0, tier = 0
        var frameIDsPresent = 0
        if reduced == 1 {
            guard let value = bits.bits(5) else { return nil }
            level = value
        } else {
            var bufferDelayLength = 0
            guard let timingInfo = bits.bits(1) else { return nil }
            var decoderModelInfo = 0
            if timingInfo == 1 {
                guard bits.bits(32) != nil, bits.bits(32) != nil, let equalInterval = bits.bits(1) else { return nil }
                if equalInterval == 1 {
                    // uvlc(): leading zeros, then as many bits.
                    var zeros = 0
                    while bits.bits(1) == 0 {
                        zeros += 1
                        guard zeros < 32 else { return nil }
                    }
                    guard bits.bits(zeros) != nil else { return nil }
                }
                guard let present = bits.bits(1) else { return nil }
                decoderModelInfo = present
                if present == 1 {
                    guard let length = bits.bits(5), bits.bits(32) != nil, bits.bits(5) != nil, bits.bits(5) != nil else { return nil }
                    bufferDelayLength = length + 1
                }
            }
            guard let initialDisplayDelay = bits.bits(1), let operatingPoints = bits.bits(5) else { return nil }
            for point in 0...operatingPoints {
                guard bits.bits(12) != nil, let pointLevel = bits.bits(5) else { return nil }
                var pointTier = 0
                if pointLevel > 7 {
                    guard let value = bits.bits(1) else { return nil }
                    pointTier = value
                }
                if decoderModelInfo == 1 {
                    guard let present = bits.bits(1) else { return nil }
                    if present == 1 {
                        guard bits.bits(bufferDelayLength) != nil, bits.bits(bufferDelayLength) != nil, bits.bits(1) != nil else { return nil }
                    }
                }
                if initialDisplayDelay == 1 {
                    guard let present = bits.bits(1) else { return nil }
                    if present == 1, bits.bits(4) == nil { return nil }
                }
                if point == 0 { (level, tier) = (pointLevel, pointTier) }
            }
        }
        self.level = level
        self.tier = tier
        guard let widthBits = bits.bits(4), let heightBits = bits.bits(4),
              let widthMinus1 = bits.bits(widthBits + 1), let heightMinus1 = bits.bits(heightBits + 1) else { return nil }
        width = widthMinus1 + 1
        height = heightMinus1 + 1
        if reduced == 0 {
            guard let present = bits.bits(1) else { return nil }
            frameIDsPresent = present
        }
        if frameIDsPresent == 1, bits.bits(4) == nil || bits.bits(3) == nil { return nil }
        // 128×128 superblocks, filter intra, intra edge filter.
        guard bits.bits(3) != nil else { return nil }
        if reduced == 0 {
            // Inter-intra, masked compound, warped motion, dual filter; then the order hint.
            guard bits.bits(4) != nil, let orderHint = bits.bits(1) else { return nil }
            if orderHint == 1, bits.bits(2) == nil { return nil }
            guard let chooseScreenContent = bits.bits(1) else { return nil }
            var forceScreenContent = 2
            if chooseScreenContent == 0 {
                guard let value = bits.bits(1) else { return nil }
                forceScreenContent = value
            }
            if forceScreenContent > 0 {
                guard let chooseIntegerMV = bits.bits(1) else { return nil }
                if chooseIntegerMV == 0, bits.bits(1) == nil { return nil }
            }
            if orderHint == 1, bits.bits(3) == nil { return nil }
        }
        // Superres, CDEF, loop restoration; then the colour configuration (§5.5.2).
        guard bits.bits(3) != nil, let highBitDepth = bits.bits(1) else { return nil }
        var twelveBit = 0
        if profile == 2, highBitDepth == 1 {
            guard let value = bits.bits(1) else { return nil }
            twelveBit = value
        }
        bitDepth = twelveBit == 1 ? 12 : highBitDepth == 1 ? 10 : 8
        var mono = 0
        if profile != 1 {
            guard let value = bits.bits(1) else { return nil }
            mono = value
        }
        monochrome = mono == 1
        var primaries = 2, transfer = 2, matrix = 2
        guard let described = bits.bits(1) else { return nil }
        if described == 1 {
            guard let p = bits.bits(8), let t = bits.bits(8), let m = bits.bits(8) else { return nil }
            (primaries, transfer, matrix) = (p, t, m)
        }
        chromaSamplePosition = 0
        if mono == 1 {
            guard bits.bits(1) != nil else { return nil }
            (subsamplingX, subsamplingY) = (1, 1)
        } else if primaries == 1, transfer == 13, matrix == 0 {
            (subsamplingX, subsamplingY) = (0, 0)
        } else {
            guard bits.bits(1) != nil else { return nil }
            switch profile {
            case 0: (subsamplingX, subsamplingY) = (1, 1)
            case 1: (subsamplingX, subsamplingY) = (0, 0)
            default:
                if bitDepth == 12 {
                    guard let x = bits.bits(1) else { return nil }
                    var y = 0
                    if x == 1 {
                        guard let value = bits.bits(1) else { return nil }
                        y = value
                    }
                    (subsamplingX, subsamplingY) = (x, y)
                } else {
                    (subsamplingX, subsamplingY) = (1, 0)
                }
            }
            if subsamplingX == 1, subsamplingY == 1 {
                guard let position = bits.bits(2) else { return nil }
                chromaSamplePosition = position
            }
        }
    }
}

/// An AV1CodecConfigurationRecord: four bytes of profile, level, tier and colour format,
/// then the sequence header OBU. Kept whole as the track's configuration: MP4's `av1C`
/// and enhanced RTMP's sequence start are this record.
public struct AV1CodecConfiguration: Sendable, Equatable {
    public var record: [UInt8]

    public var profile: Int { Int(record[1] >> 5) }
    public var level: Int { Int(record[1] & 0x1F) }
    public var tier: Int { Int(record[2] >> 7) }
    public var bitDepth: Int { record[2] & 0x20 != 0 ? 12 : record[2] & 0x40 != 0 ? 10 : 8 }
    /// The OBUs after the four fixed bytes: the sequence header, perhaps metadata.
    public var configurationOBUs: ArraySlice<UInt8> { record[4...] }

    public var sequenceHeader: AV1SequenceHeader? {
        AV1.obus(configurationOBUs)?.first { $0.type == AV1.sequenceHeader }.flatMap { AV1SequenceHeader(obu: $0.bytes) }
    }

    public static func parse(_ bytes: ArraySlice<UInt8>) throws(FLVError) -> AV1CodecConfiguration {
        guard bytes.count >= 4 else { throw FLVError.truncated("AV1 codec configuration record") }
        guard bytes[bytes.startIndex] == 0x81 else { throw FLVError.unsupported("AV1 codec configuration record version (marker and version 1 expected)") }
        guard AV1.obus(bytes.dropFirst(4)) != nil else { throw FLVError.truncated("AV1 configuration OBUs") }
        return AV1CodecConfiguration(record: Array(bytes))
    }

    /// The record for a sequence header OBU, as an encoder's muxer writes it.
    public init?(sequenceHeaderOBU obu: ArraySlice<UInt8>) {
        guard let header = AV1SequenceHeader(obu: obu) else { return nil }
        let colour = UInt8(header.tier << 7) | UInt8(header.bitDepth > 8 ? 0x40 : 0) | UInt8(header.bitDepth == 12 ? 0x20 : 0)
            | UInt8(header.monochrome ? 0x10 : 0) | UInt8(header.subsamplingX << 3) | UInt8(header.subsamplingY << 2) | UInt8(header.chromaSamplePosition)
        record = [0x81, UInt8(header.profile << 5 | header.level), colour, 0] + obu
    }

    init(record: [UInt8]) {
        self.record = record
    }
}

/// A VPCodecConfigurationRecord (the body of MP4's `vpcC` after its version and flags):
/// profile, level, bit depth, chroma format and colour. Enhanced RTMP's `vp09` sequence
/// start carries it.
public struct VP9CodecConfiguration: Sendable, Equatable {
    public var record: [UInt8]

    public var profile: Int { Int(record[0]) }
    public var level: Int { Int(record[1]) }
    public var bitDepth: Int { Int(record[2] >> 4) }

    public static func parse(_ bytes: ArraySlice<UInt8>) throws(FLVError) -> VP9CodecConfiguration {
        // Some muxers keep the full box's version and flags (version 1, flags 0) in front.
        let body = bytes.count >= 12 && bytes.prefix(4).elementsEqual([1, 0, 0, 0]) ? bytes.dropFirst(4) : bytes
        guard body.count >= 8 else { throw FLVError.truncated("VP9 codec configuration record") }
        let configuration = VP9CodecConfiguration(record: Array(body))
        guard configuration.profile <= 3, [8, 10, 12].contains(configuration.bitDepth) else {
            throw FLVError.unsupported("VP9 codec configuration (profile \(configuration.profile), \(configuration.bitDepth)-bit)")
        }
        return configuration
    }

    public init(profile: Int, level: Int, bitDepth: Int) {
        // 4:2:0 with colocated chroma, limited range, unspecified colour, no initialization data.
        record = [UInt8(profile), UInt8(level), UInt8(bitDepth << 4 | 1 << 1), 2, 2, 2, 0, 0]
    }

    init(record: [UInt8]) {
        self.record = record
    }
}

extension CodecString {
    /// `av01.P.LLT.DD` (AV1-ISOBMFF §5): profile, level with tier (M or H), bit depth.
    public static func av1(_ configuration: AV1CodecConfiguration) -> String {
        "av01.\(configuration.profile).\(twoDigits(configuration.level))\(configuration.tier == 1 ? "H" : "M").\(twoDigits(configuration.bitDepth))"
    }

    /// `vp09.PP.LL.DD` (the VP codec ISO media file format binding): profile, level, bit depth.
    public static func vp9(_ configuration: VP9CodecConfiguration) -> String {
        "vp09.\(twoDigits(configuration.profile)).\(twoDigits(configuration.level)).\(twoDigits(configuration.bitDepth))"
    }

    private static func twoDigits(_ value: Int) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }
}

extension FLVVideo {
    /// Enhanced RTMP's sequence start for a codec whose configuration record goes as it is (`av01`, `vp09`).
    public static func enhancedSequenceStart(fourCC: String, record: [UInt8]) -> [UInt8] {
        [0x80 | 0x10 | 0x00] + Array(fourCC.utf8) + record
    }

    /// Enhanced RTMP's coded frames without a composition time (`av01`, `vp09`): the frame as it is.
    public static func enhancedFrame(fourCC: String, data: [UInt8], keyframe: Bool) -> [UInt8] {
        [0x80 | (keyframe ? 0x10 : 0x20) | 0x01] + Array(fourCC.utf8) + data
    }
}
