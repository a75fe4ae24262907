/// What a subscriber transport sent under each transport-wide sequence number (the
/// transport-cc extension), kept until the subscriber's feedback reports it.
///
/// A ring indexed by the number modulo its capacity: recording a forwarded copy neither
/// hashes nor allocates. Feedback comes every 50 to 250 ms; `capacity` packets are a second
/// of 4 Mbit/s video. A packet still unreported after `capacity` more have left is
/// overwritten, and to the estimator it is as if never sent.
struct SendHistory {
    struct Sent: Equatable {
        var at: Duration
        var size: Int
        /// The probe cluster it belonged to.
        var probe: Int?
    }

    private struct Slot {
        var at: Duration = .zero
        var size: Int32 = 0
        /// The probe cluster, or -1.
        var probe: Int32 = -1
        var sequence: UInt16 = 0
        var isPending = false
    }

    static let capacity = 512
    private var slots = [Slot](repeating: Slot(), count: capacity)

    mutating func record(_ sequence: UInt16, at: Duration, size: Int, probe: Int?) {
        slots[Int(sequence) % Self.capacity] = Slot(at: at, size: Int32(clamping: size), probe: probe.map { Int32(clamping: $0) } ?? -1,
                                                     sequence: sequence, isPending: true)
    }

    /// What was sent as `sequence`, once: a report repeated in later feedback finds nothing.
    mutating func take(_ sequence: UInt16) -> Sent? {
        let index = Int(sequence) % Self.capacity
        let slot = slots[index]
        guard slot.isPending, slot.sequence == sequence else { return nil }
        slots[index].isPending = false
        return Sent(at: slot.at, size: Int(slot.size), probe: slot.probe < 0 ? nil : Int(slot.probe))
    }
}
