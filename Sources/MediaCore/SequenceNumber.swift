/// Serial-number arithmetic (RFC 1982) for RTP's 16-bit sequence numbers and 32-bit
/// timestamps, which wrap: "newer" means less than half the space ahead.
public enum SerialNumber {
    public static func isNewer(_ a: UInt16, than b: UInt16) -> Bool {
        a != b && a &- b < 0x8000
    }

    public static func isNewer(_ a: UInt32, than b: UInt32) -> Bool {
        a != b && a &- b < 0x8000_0000
    }

    /// How far `a` is ahead of `b` (negative when behind), across the wrap.
    public static func distance(from b: UInt16, to a: UInt16) -> Int {
        Int(Int16(bitPattern: a &- b))
    }
}

/// Extends 16-bit sequence numbers to a monotonic 64-bit count by tracking wrap-arounds,
/// as receivers must for loss and jitter statistics (RFC 3550 appendix A.1).
public struct SequenceUnwrapper: Sendable {
    private var last: Int64?

    public init() {}

    public mutating func unwrap(_ sequence: UInt16) -> Int64 {
        guard let previous = last else {
            last = Int64(sequence)
            return Int64(sequence)
        }
        let delta = Int64(SerialNumber.distance(from: UInt16(truncatingIfNeeded: previous), to: sequence))
        let value = previous + delta
        if delta > 0 { last = value }
        return value
    }
}
