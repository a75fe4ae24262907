/// What an H.264 RTP payload (RFC 6184 §5) carries: single NAL units, STAP-A aggregates
/// and FU-A fragments, read for the NAL types and keyframe starts.
public struct H264Payload: Sendable, Equatable {
    public enum Packetization: Sendable, Equatable {
        case single
        case aggregate
        case fragment(start: Bool, end: Bool)
    }

    public var packetization: Packetization
    /// The NAL unit types in the packet (for FU-A, the fragmented unit's type).
    public var nalTypes: [UInt8]

    /// Starts an IDR picture (or its parameter sets): a switching point for the SFU.
    public var isKeyframe: Bool {
        switch packetization {
        case .fragment(let start, _): start && nalTypes.contains(5)
        default: nalTypes.contains(5) || nalTypes.contains(7)
        }
    }

    /// The NAL units a STAP-A payload carries (RFC 6184 §5.7.1), each with its header byte;
    /// nil when one is empty or cut short.
    public static func aggregatedUnits(_ payload: ArraySlice<UInt8>) -> [ArraySlice<UInt8>]? {
        var units: [ArraySlice<UInt8>] = []
        var index = payload.startIndex + 1
        while index + 2 <= payload.endIndex {
            let size = Int(payload[index]) << 8 | Int(payload[index + 1])
            index += 2
            guard size > 0, index + size <= payload.endIndex else { return nil }
            units.append(payload[index..<(index + size)])
            index += size
        }
        return units
    }

    public static func parse(_ payload: ArraySlice<UInt8>) -> H264Payload? {
        guard let header = payload.first else { return nil }
        guard header & 0x80 == 0 else { return nil }
        let type = header & 0x1F
        switch type {
        case 1...23:
            return H264Payload(packetization: .single, nalTypes: [type])
        case 24:
            guard let units = aggregatedUnits(payload), !units.isEmpty else { return nil }
            return H264Payload(packetization: .aggregate, nalTypes: units.map { $0[$0.startIndex] & 0x1F })
        case 28:
            guard payload.count >= 2 else { return nil }
            let fragment = payload[payload.startIndex + 1]
            let start = fragment & 0x80 != 0
            let end = fragment & 0x40 != 0
            guard !(start && end) else { return nil }
            return H264Payload(packetization: .fragment(start: start, end: end), nalTypes: [fragment & 0x1F])
        default:
            return nil
        }
    }
}
