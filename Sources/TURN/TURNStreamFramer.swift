/// TURN over a byte stream (RFC 8656 §12.5): STUN messages and ChannelData frames back to
/// back, ChannelData padded to four bytes. Bytes in, whole frames out.
public struct TURNStreamFramer: Sendable {
    public enum FramingError: Error, Equatable {
        /// The first byte starts neither a STUN message nor ChannelData.
        case notTURN
        case tooLarge(Int)
    }

    /// A STUN message or ChannelData with its padding, at most.
    public static let maxFrame = 4 + 65535 + 3
    private var buffer: [UInt8] = []

    public init() {}

    /// The frames `bytes` completes; a partial frame waits for more. After an error the
    /// stream cannot be followed any more: close it.
    public mutating func feed(_ bytes: some Sequence<UInt8>) throws(FramingError) -> [[UInt8]] {
        buffer += bytes
        var frames: [[UInt8]] = []
        var start = 0
        while buffer.count - start >= 4 {
            let declared = Int(UInt16(buffer[start + 2]) << 8 | UInt16(buffer[start + 3]))
            let length: Int
            switch buffer[start] {
            case 0x00...0x03: length = 20 + declared
            case 0x40...0x4F: length = 4 + declared + (4 - declared % 4) % 4
            default: throw .notTURN
            }
            guard length <= Self.maxFrame else { throw .tooLarge(length) }
            guard buffer.count - start >= length else { break }
            frames.append(Array(buffer[start..<(start + length)]))
            start += length
        }
        buffer.removeFirst(start)
        return frames
    }
}
