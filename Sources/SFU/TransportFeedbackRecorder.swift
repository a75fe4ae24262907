import MediaCore
import RTCP

/// Receive side of transport-wide congestion control: records when each transport-wide
/// sequence number arrived and turns them into feedback (draft-holmer-rmcat-transport-wide-cc-
/// extensions-01 §3.1) for the sender's bandwidth estimator.
public struct TransportFeedbackRecorder: Sendable {
    private var unwrapper = SequenceUnwrapper()
    private var arrivals: [Int64: Duration] = [:]
    private var nextToReport: Int64?
    private var feedbackCount: UInt8 = 0
    /// Packets older than this many behind the newest are not reported any more.
    private let window: Int64 = 1000

    public init() {}

    public mutating func record(_ sequence: UInt16, at arrival: Duration) {
        let unwrapped = unwrapper.unwrap(sequence)
        arrivals[unwrapped] = arrival
        if nextToReport == nil || unwrapped < nextToReport! { nextToReport = unwrapped }
    }

    /// Feedback for everything since the last call, or nil when nothing new arrived.
    public mutating func feedback(senderSSRC: UInt32, mediaSSRC: UInt32) -> TransportFeedback? {
        guard var start = nextToReport, let last = arrivals.keys.max(), last >= start else { return nil }
        start = max(start, last - window)
        guard let first = (start...last).first(where: { arrivals[$0] != nil }), let firstArrival = arrivals[first] else { return nil }
        start = first
        // The reference time is in 64 ms units; deltas are in 250 µs units from it.
        let reference = firstArrival.microseconds / 64_000
        var previous = reference * 64_000
        var packets: [TransportFeedback.PacketStatus] = []
        packets.reserveCapacity(Int(last - start + 1))
        for sequence in start...last {
            let wire = UInt16(truncatingIfNeeded: sequence)
            guard let arrival = arrivals[sequence] else {
                packets.append(.init(sequenceNumber: wire, delta: nil))
                continue
            }
            let units = max(-32768, min(32767, (arrival.microseconds - previous) / 250))
            previous += units * 250
            packets.append(.init(sequenceNumber: wire, delta: Int16(units)))
        }
        arrivals = arrivals.filter { $0.key > last }
        nextToReport = last + 1
        defer { feedbackCount &+= 1 }
        return TransportFeedback(senderSSRC: senderSSRC, mediaSSRC: mediaSSRC, baseSequenceNumber: UInt16(truncatingIfNeeded: start),
                                 referenceTime: Int32(truncatingIfNeeded: reference & 0x7F_FFFF), feedbackCount: feedbackCount, packets: packets)
    }
}
