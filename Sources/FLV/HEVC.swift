/// H.265/HEVC as enhanced RTMP carries it (FourCC `hvc1`): NAL unit types, the
/// HEVCDecoderConfigurationRecord (ISO 14496-15 §8.3.3.1) both ways, and the picture size
/// a sequence parameter set declares.
public enum HEVC {
    public static let vps: UInt8 = 32
    public static let sps: UInt8 = 33
    public static let pps: UInt8 = 34
    public static let accessUnitDelimiter: UInt8 = 35
    public static let parameterSetTypes: Set<UInt8> = [vps, sps, pps]

    /// NAL unit type of a unit: six bits after the forbidden bit of its two-byte header.
    public static func type(_ unit: ArraySlice<UInt8>) -> UInt8 { unit.first.map { ($0 >> 1) & 0x3F } ?? 0 }

    /// The 12 bytes of general profile, tier and level that follow an SPS's header and its
    /// first byte, emulation prevention removed: what the hvcC record and the RFC 6381
    /// codec string repeat.
    public static func generalProfileTierLevel(sps unit: ArraySlice<UInt8>) -> [UInt8]? {
        guard type(unit) == sps else { return nil }
        let body = PictureSize.unescaped(unit.dropFirst(2).prefix(32))
        guard body.count >= 13 else { return nil }
        return Array(body[1..<13])
    }
}

/// RFC 6381 codec strings for HLS's CODECS attribute, from the stream's own SPS.
public enum CodecString {
    /// `avc1.PPCCLL`: profile_idc, the constraint flags and level_idc.
    public static func avc(sps unit: ArraySlice<UInt8>) -> String? {
        guard AnnexB.type(unit) == 7 else { return nil }
        let body = PictureSize.unescaped(unit.dropFirst().prefix(8))
        guard body.count >= 3 else { return nil }
        return "avc1." + body[0..<3].map { hex($0, width: 2) }.joined()
    }

    /// `hvc1.1.6.L93.B0` (ISO 14496-15 Annex E): profile space and idc, the compatibility
    /// flags bit-reversed, tier and level, then the constraint bytes without trailing zeros.
    public static func hevc(sps unit: ArraySlice<UInt8>) -> String? {
        guard let ptl = HEVC.generalProfileTierLevel(sps: unit) else { return nil }
        let space = ["", "A", "B", "C"][Int(ptl[0] >> 6)]
        let compatibility = ptl[1..<5].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        var reversed: UInt32 = 0
        for bit in 0..<32 where compatibility & (1 << bit) != 0 { reversed |= 1 << (31 - bit) }
        var constraints = Array(ptl[5..<11])
        while constraints.last == 0 { constraints.removeLast() }
        let parts = ["hvc1", "\(space)\(ptl[0] & 0x1F)", String(reversed, radix: 16, uppercase: true),
                     "\(ptl[0] & 0x20 != 0 ? "H" : "L")\(ptl[11])"] + constraints.map { String($0, radix: 16, uppercase: true) }
        return parts.joined(separator: ".")
    }

    private static func hex(_ byte: UInt8, width: Int) -> String {
        let digits = String(byte, radix: 16, uppercase: false)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

/// An HEVCDecoderConfigurationRecord, read back to Annex B parameter sets (VPS, SPS, PPS).
public struct HEVCDecoderConfiguration: Sendable, Equatable {
    public var lengthSize: Int
    public var parameterSets: [UInt8]

    public static func parse(_ record: ArraySlice<UInt8>) throws(FLVError) -> HEVCDecoderConfiguration {
        // 22 bytes of profile, level and format fields, the NAL length size in the last; then the arrays.
        guard record.count >= 23, record.first == 1 else { throw FLVError.truncated("HEVC decoder configuration") }
        let lengthSize = Int(record[record.startIndex + 21] & 0x03) + 1
        var index = record.startIndex + 22
        let arrays = Int(record[index])
        index += 1
        var sets: [UInt8] = []
        var types: Set<UInt8> = []
        for _ in 0..<arrays {
            guard index + 3 <= record.endIndex else { throw FLVError.truncated("HEVC NAL unit array") }
            let type = record[index] & 0x3F
            let count = Int(record[index + 1]) << 8 | Int(record[index + 2])
            index += 3
            for _ in 0..<count {
                let unit = try AVCDecoderConfiguration.sizedUnit(record, at: &index, what: "HEVC NAL unit")
                // SEI arrays may ride along; keyframes only need the parameter sets.
                if HEVC.parameterSetTypes.contains(type), !unit.isEmpty {
                    sets += [0, 0, 0, 1]
                    sets += unit
                    types.insert(type)
                }
            }
        }
        guard types == HEVC.parameterSetTypes else { throw FLVError.truncated("HEVC parameter sets (need VPS, SPS and PPS)") }
        return HEVCDecoderConfiguration(lengthSize: lengthSize, parameterSets: sets)
    }
}

extension FLVVideo {
    /// Enhanced RTMP's HEVC sequence start: the record built from Annex B VPS, SPS and PPS,
    /// with 4-byte NAL lengths. Profile, tier and level are copied from the SPS.
    public static func hevcSequenceHeader(parameterSets: [UInt8]) throws(FLVError) -> [UInt8] {
        let units = AnnexB.nalUnits(parameterSets)
        let grouped = [HEVC.vps, HEVC.sps, HEVC.pps].map { type in units.filter { HEVC.type($0) == type } }
        guard grouped.allSatisfy({ !$0.isEmpty }), let sps = grouped[1].first, let profileTierLevel = HEVC.generalProfileTierLevel(sps: sps) else {
            throw FLVError.truncated("HEVC parameter sets (need VPS, SPS and PPS)")
        }
        guard grouped.allSatisfy({ $0.count <= 0xFFFF && $0.allSatisfy { $0.count <= 0xFFFF } }) else {
            throw FLVError.unsupported("HEVC parameter set over 65535 bytes")
        }
        var record: [UInt8] = [0x80 | 0x10 | 0x00] + Array("hvc1".utf8) + [1] + profileTierLevel
        // No segmentation or parallelism hints, 4:2:0, 8-bit, one temporal layer, 4-byte lengths.
        record += [0xF0, 0x00, 0xFC, 0xFD, 0xF8, 0xF8, 0x00, 0x00, 0x0F, UInt8(grouped.count)]
        for (type, group) in zip([HEVC.vps, HEVC.sps, HEVC.pps], grouped) {
            record += [0x80 | type, UInt8(group.count >> 8), UInt8(group.count & 0xFF)]
            for unit in group { record += [UInt8(unit.count >> 8), UInt8(unit.count & 0xFF)] + unit }
        }
        return record
    }

    /// One HEVC picture as enhanced RTMP's coded frames: Annex B in, 4-byte length-prefixed
    /// NAL units out, access unit delimiters left out.
    public static func hevcFrame(annexB: [UInt8], keyframe: Bool, compositionTime: Int32 = 0) -> [UInt8] {
        let cts = UInt32(bitPattern: compositionTime) & 0xFF_FFFF
        var body: [UInt8] = [0x80 | (keyframe ? 0x10 : 0x20) | 0x01] + Array("hvc1".utf8)
        body += [UInt8(cts >> 16), UInt8(cts >> 8 & 0xFF), UInt8(cts & 0xFF)]
        for unit in AnnexB.nalUnits(annexB) where HEVC.type(unit) != HEVC.accessUnitDelimiter {
            let size = UInt32(unit.count)
            body += [UInt8(size >> 24), UInt8(size >> 16 & 0xFF), UInt8(size >> 8 & 0xFF), UInt8(size & 0xFF)]
            body += unit
        }
        return body
    }
}

extension PictureSize {
    /// HEVC (ITU-T H.265 §7.3.2.2), conformance window applied. `unit`: one SPS NAL unit,
    /// its two header bytes included, without a start code.
    public init?(hevcSPS unit: ArraySlice<UInt8>) {
        guard unit.count >= 16, HEVC.type(unit) == HEVC.sps else { return nil }
        var bits = BitReader(PictureSize.unescaped(unit.dropFirst(2)))
        guard bits.bits(4) != nil, let maxSubLayersMinus1 = bits.bits(3), bits.bits(1) != nil else { return nil }
        // profile_tier_level: the general profile (88 bits) and level (8), then per sub-layer
        // which of the two are present, padded to eight entries, then those present.
        guard bits.bits(32) != nil, bits.bits(32) != nil, bits.bits(24) != nil, bits.bits(8) != nil else { return nil }
        var present: [(profile: Int, level: Int)] = []
        for _ in 0..<maxSubLayersMinus1 {
            guard let profile = bits.bits(1), let level = bits.bits(1) else { return nil }
            present.append((profile, level))
        }
        if maxSubLayersMinus1 > 0 {
            for _ in maxSubLayersMinus1..<8 where bits.bits(2) == nil { return nil }
        }
        for layer in present {
            if layer.profile == 1, bits.bits(32) == nil || bits.bits(32) == nil || bits.bits(24) == nil { return nil }
            if layer.level == 1, bits.bits(8) == nil { return nil }
        }
        guard bits.unsigned() != nil, let chromaFormat = bits.unsigned(), chromaFormat <= 3 else { return nil }
        var separateColourPlanes = 0
        if chromaFormat == 3 {
            guard let flag = bits.bits(1) else { return nil }
            separateColourPlanes = flag
        }
        guard let lumaWidth = bits.unsigned(), let lumaHeight = bits.unsigned(), lumaWidth < 16384, lumaHeight < 16384,
              let conformance = bits.bits(1) else { return nil }
        var window = (left: 0, right: 0, top: 0, bottom: 0)
        if conformance == 1 {
            guard let left = bits.unsigned(), let right = bits.unsigned(), let top = bits.unsigned(), let bottom = bits.unsigned() else { return nil }
            window = (left, right, top, bottom)
        }
        let format = separateColourPlanes == 1 ? 0 : chromaFormat
        let unitX = format == 1 || format == 2 ? 2 : 1
        let unitY = format == 1 ? 2 : 1
        width = lumaWidth - unitX * (window.left + window.right)
        height = lumaHeight - unitY * (window.top + window.bottom)
        guard width > 0, height > 0 else { return nil }
    }
}
