/// H.264 byte streams (ITU-T H.264 Annex B): NAL units behind 3- or 4-byte start codes.
public enum AnnexB {
    /// The NAL units of `bytes`, without start codes.
    public static func nalUnits(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        var units: [ArraySlice<UInt8>] = []
        var start: Int?
        var index = 0
        while index + 2 < bytes.count {
            if bytes[index] == 0, bytes[index + 1] == 0, bytes[index + 2] == 1 {
                if let start {
                    var end = index
                    while end > start, bytes[end - 1] == 0 { end -= 1 }
                    units.append(bytes[start..<end])
                }
                index += 3
                start = index
            } else {
                index += 1
            }
        }
        if let start, start < bytes.count { units.append(bytes[start...]) }
        return units.filter { !$0.isEmpty }
    }

    /// NAL unit type of a unit (the low five bits of its first byte).
    public static func type(_ unit: ArraySlice<UInt8>) -> UInt8 { unit.first.map { $0 & 0x1F } ?? 0 }
}
