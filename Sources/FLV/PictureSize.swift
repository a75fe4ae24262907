/// The picture size a sequence parameter set declares, for feeds that say nothing else
/// about it (MPEG-TS, RTP). Bounded: a malformed unit gives nil.
public struct PictureSize: Equatable, Sendable {
    public var width: Int
    public var height: Int

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    /// H.264 (ITU-T H.264 §7.3.2.1.1). `unit`: one SPS NAL unit, header byte included,
    /// without a start code.
    public init?(h264SPS unit: ArraySlice<UInt8>) {
        guard unit.count >= 4, unit.first.map({ $0 & 0x1F }) == 7 else { return nil }
        var bits = BitReader(Self.unescaped(unit.dropFirst()))
        guard let profile = bits.bits(8), bits.bits(16) != nil, bits.unsigned() != nil else { return nil }
        var chromaFormat = 1
        if [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].contains(profile) {
            guard let format = bits.unsigned(), format <= 3 else { return nil }
            chromaFormat = format
            if format == 3, bits.bits(1) == nil { return nil }
            guard bits.unsigned() != nil, bits.unsigned() != nil, bits.bits(1) != nil, let matrix = bits.bits(1) else { return nil }
            if matrix == 1 {
                for list in 0..<(format == 3 ? 12 : 8) {
                    guard let present = bits.bits(1) else { return nil }
                    if present == 1, !bits.skipScalingList(list < 6 ? 16 : 64) { return nil }
                }
            }
        }
        guard bits.unsigned() != nil, let pocType = bits.unsigned() else { return nil }
        switch pocType {
        case 0:
            guard bits.unsigned() != nil else { return nil }
        case 1:
            guard bits.bits(1) != nil, bits.signed() != nil, bits.signed() != nil, let cycle = bits.unsigned(), cycle <= 255 else { return nil }
            for _ in 0..<cycle where bits.signed() == nil { return nil }
        case 2:
            break
        default:
            return nil
        }
        guard bits.unsigned() != nil, bits.bits(1) != nil, let widthInMacroblocks = bits.unsigned(), let heightInMapUnits = bits.unsigned(),
              let frameMacroblocksOnly = bits.bits(1), widthInMacroblocks < 1024, heightInMapUnits < 1024 else { return nil }
        if frameMacroblocksOnly == 0, bits.bits(1) == nil { return nil }
        guard bits.bits(1) != nil, let cropping = bits.bits(1) else { return nil }
        var crop = (left: 0, right: 0, top: 0, bottom: 0)
        if cropping == 1 {
            guard let left = bits.unsigned(), let right = bits.unsigned(), let top = bits.unsigned(), let bottom = bits.unsigned() else { return nil }
            crop = (left, right, top, bottom)
        }
        let cropUnitX = chromaFormat == 0 || chromaFormat == 3 ? 1 : 2
        let cropUnitY = (chromaFormat == 1 ? 2 : 1) * (2 - frameMacroblocksOnly)
        width = (widthInMacroblocks + 1) * 16 - cropUnitX * (crop.left + crop.right)
        height = (2 - frameMacroblocksOnly) * (heightInMapUnits + 1) * 16 - cropUnitY * (crop.top + crop.bottom)
        guard width > 0, height > 0 else { return nil }
    }

    /// The RBSP: every 0x000003 loses its 03.
    static func unescaped(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var zeros = 0
        for byte in bytes {
            if zeros >= 2, byte == 3 {
                zeros = 0
                continue
            }
            zeros = byte == 0 ? zeros + 1 : 0
            out.append(byte)
        }
        return out
    }
}
