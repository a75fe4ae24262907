/// RFC 4571 framing for ICE-TCP (RFC 6544): each packet is preceded by its 16-bit length.
public struct ICETCPFramer: Sendable {
    /// A peer cannot make us buffer more than one maximum frame plus its header.
    public static let maxFrame = 65535
    private var buffer: [UInt8] = []

    public init() {}

    /// Appends received bytes and returns every complete packet, in order.
    public mutating func feed(_ bytes: some Collection<UInt8>) -> [[UInt8]] {
        buffer.append(contentsOf: bytes)
        var frames: [[UInt8]] = []
        var offset = 0
        while buffer.count - offset >= 2 {
            let length = Int(buffer[offset]) << 8 | Int(buffer[offset + 1])
            guard buffer.count - offset - 2 >= length else { break }
            frames.append(Array(buffer[(offset + 2)..<(offset + 2 + length)]))
            offset += 2 + length
        }
        if offset > 0 { buffer.removeFirst(offset) }
        return frames
    }

    public var bufferedBytes: Int { buffer.count }

    public static func frame(_ packet: [UInt8]) -> [UInt8] {
        precondition(packet.count <= maxFrame, "an RFC 4571 frame holds at most 65535 bytes")
        return [UInt8(packet.count >> 8), UInt8(packet.count & 0xFF)] + packet
    }
}
