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

    public static func parse(_ payload: ArraySlice<UInt8>) -> H264Payload? {
        guard let header = payload.first else { return nil }
        guard header & 0x80 == 0 else { return nil }
        let type = header & 0x1F
        switch type {
        case 1...23:
            return H264Payload(packetization: .single, nalTypes: [type])
        case 24:
            var types: [UInt8] = []
            var index = payload.startIndex + 1
            while index + 2 <= payload.endIndex {
                let size = Int(payload[index]) << 8 | Int(payload[index + 1])
                index += 2
                guard size > 0, index + size <= payload.endIndex else { return nil }
                types.append(payload[index] & 0x1F)
                index += size
            }
            return types.isEmpty ? nil : H264Payload(packetization: .aggregate, nalTypes: types)
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
