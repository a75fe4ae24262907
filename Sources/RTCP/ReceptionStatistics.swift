import MediaCore

/// What a receiver knows about one incoming RTP stream, and the reception report it owes
/// the sender (RFC 3550 §6.4.1, appendix A.3 and A.8). Time is passed in.
public struct ReceptionStatistics: Sendable {
    public let clockRate: UInt32
    private var unwrapper = SequenceUnwrapper()
    private var base: Int64?
    private var highest: Int64 = 0
    private var received: Int64 = 0
    private var expectedAtLastReport: Int64 = 0
    private var receivedAtLastReport: Int64 = 0
    private var lastTransit: Double?
    /// Interarrival jitter in timestamp units.
    public private(set) var jitter: Double = 0
    private var lastSenderReport: (ntpMiddle: UInt32, arrival: Duration)?

    public init(clockRate: UInt32) {
        self.clockRate = clockRate
    }

    public mutating func record(sequence: UInt16, timestamp: UInt32, arrival: Duration) {
        let extended = unwrapper.unwrap(sequence)
        if base == nil { base = extended; highest = extended }
        highest = max(highest, extended)
        received += 1
        // A.8: the change in transit time between consecutive packets, smoothed by 1/16.
        let arrivalUnits = arrival.seconds * Double(clockRate)
        let transit = arrivalUnits - Double(timestamp)
        if let lastTransit {
            var difference = abs(transit - lastTransit)
            // A timestamp wrap shows up as a jump of 2^32; fold it back.
            if difference > Double(UInt32.max) / 2 { difference = abs(difference - Double(UInt32.max) - 1) }
            jitter += (difference - jitter) / 16
        }
        lastTransit = transit
    }

    public mutating func recordSenderReport(ntpTimestamp: UInt64, arrival: Duration) {
        lastSenderReport = (UInt32(truncatingIfNeeded: ntpTimestamp >> 16), arrival)
    }

    /// The report block for `ssrc`; each call starts a new interval for the fraction lost.
    public mutating func report(ssrc: UInt32, now: Duration) -> ReceptionReport? {
        guard let base else { return nil }
        let expected = highest - base + 1
        let lost = max(-0x80_0000, min(0x7F_FFFF, expected - received))
        let expectedInterval = expected - expectedAtLastReport
        let receivedInterval = received - receivedAtLastReport
        expectedAtLastReport = expected
        receivedAtLastReport = received
        let lostInterval = expectedInterval - receivedInterval
        let fraction = expectedInterval <= 0 || lostInterval <= 0 ? 0 : UInt8(min(255, (lostInterval << 8) / expectedInterval))
        var lsr: UInt32 = 0
        var dlsr: UInt32 = 0
        if let sr = lastSenderReport {
            lsr = sr.ntpMiddle
            dlsr = UInt32(max(0, min(Double(UInt32.max), (now - sr.arrival).seconds * 65536)))
        }
        return ReceptionReport(ssrc: ssrc, fractionLost: fraction, cumulativeLost: Int32(lost),
                               extendedHighestSequence: UInt32(truncatingIfNeeded: highest), jitter: UInt32(jitter),
                               lastSenderReport: lsr, delaySinceLastSenderReport: dlsr)
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// NTP time (RFC 5905 §6, 32.32 fixed point since 1900) from Unix seconds.
public enum NTPTime {
    public static func from(unixSeconds: Double) -> UInt64 {
        let ntpSeconds = unixSeconds + 2_208_988_800
        let whole = UInt64(ntpSeconds)
        let fraction = UInt64((ntpSeconds - Double(whole)) * 4_294_967_296)
        return whole << 32 | fraction
    }

    /// Round-trip time from a reception report of one of our sender reports (RFC 3550 §6.4.1):
    /// arrival minus LSR minus DLSR, all in NTP's middle 32 bits (1/65536 s).
    public static func roundTrip(arrivalNTP: UInt64, lastSenderReport: UInt32, delaySinceLastSenderReport: UInt32) -> Duration? {
        guard lastSenderReport != 0 else { return nil }
        let arrival = UInt32(truncatingIfNeeded: arrivalNTP >> 16)
        let rtt = Int64(arrival &- lastSenderReport &- delaySinceLastSenderReport)
        guard rtt >= 0, rtt < 65536 * 10 else { return nil }
        return .microseconds(rtt * 1_000_000 / 65536)
    }
}
