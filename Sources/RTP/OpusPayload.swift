/// The Opus TOC byte (RFC 6716 §3.1) as RTP carries it (RFC 7587 §4.2).
public struct OpusPayload: Sendable, Equatable {
    public enum Mode: Sendable, Equatable { case silk, hybrid, celt }

    public var configuration: UInt8
    public var stereo: Bool
    /// 0: one frame, 1: two equal, 2: two different, 3: an arbitrary number.
    public var frameCountCode: UInt8

    public var mode: Mode {
        switch configuration {
        case 0...11: .silk
        case 12...15: .hybrid
        default: .celt
        }
    }

    /// Duration of one frame in microseconds.
    public var frameDuration: Int {
        switch mode {
        case .silk: [10_000, 20_000, 40_000, 60_000][Int(configuration % 4)]
        case .hybrid: [10_000, 20_000][Int(configuration % 2)]
        case .celt: [2_500, 5_000, 10_000, 20_000][Int(configuration % 4)]
        }
    }

    public static func parse(_ payload: ArraySlice<UInt8>) -> OpusPayload? {
        guard let toc = payload.first else { return nil }
        return OpusPayload(configuration: toc >> 3, stereo: toc & 0x04 != 0, frameCountCode: toc & 0x03)
    }
}
