/// The last packets sent on a stream, by sequence number, for answering NACKs.
/// A fixed ring: memory is bounded, and old packets fall out as new ones arrive.
public struct RTPPacketCache: Sendable {
    private var slots: [[UInt8]?]
    private var sequences: [UInt16]

    /// `capacity` should cover about a second of the stream's packets.
    public init(capacity: Int = 1024) {
        precondition(capacity > 0)
        slots = Array(repeating: nil, count: capacity)
        sequences = Array(repeating: 0, count: capacity)
    }

    public mutating func store(_ packet: [UInt8], sequenceNumber: UInt16) {
        let slot = Int(sequenceNumber) % slots.count
        slots[slot] = packet
        sequences[slot] = sequenceNumber
    }

    /// The packet with this sequence number, if still held.
    public func packet(_ sequenceNumber: UInt16) -> [UInt8]? {
        let slot = Int(sequenceNumber) % slots.count
        return sequences[slot] == sequenceNumber ? slots[slot] : nil
    }
}
