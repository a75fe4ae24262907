/// Finds out whether a subscriber's path could carry more than it does now, so a consumer held
/// on a low layer can climb back once a bottleneck clears.
///
/// A probe is a short burst of padding (RTX copies of packets already sent) leaving at once;
/// the receiver's transport-cc feedback tells how far apart the burst arrived, and the bytes
/// over that spread are what the narrowest link passed (packet-train dispersion, as
/// libwebrtc's ProbeBitrateEstimator reads its clusters). Failed probes back off, so a
/// congested path is not probed into worse congestion. Time is passed in.
public struct BandwidthProber: Sendable {
    public struct Cluster: Sendable, Equatable {
        public let id: Int
        /// The rate the burst stands for; what it measures is capped at this.
        public let target: Double
        public let packets: Int
        public let bytesPerPacket: Int
    }

    /// Packets of a cluster as feedback reported them.
    private struct Observation {
        var cluster: Cluster
        var sentAt: Duration
        var received: [(arrival: Duration, size: Int)] = []
        var lost = 0
    }

    public static let firstInterval = Duration.seconds(2)
    public static let longestInterval = Duration.seconds(8)
    /// A burst whose feedback has not come back in this long is judged on what did.
    static let verdictDelay = Duration.milliseconds(400)

    private var nextProbeAt: Duration = .zero
    private var interval = firstInterval
    private var pending: Observation?
    private var nextID = 1
    public private(set) var succeeded = 0
    public private(set) var failed = 0

    public init() {}

    /// A burst to send now when the consumers want `wanted` bits/s and the estimate allows
    /// less, the path is not congested and no probe is in flight or backing off.
    public mutating func cluster(wanted: Double, estimate: Double, overusing: Bool, packetSize: Int, now: Duration) -> Cluster? {
        guard pending == nil, !overusing, wanted > estimate, now >= nextProbeAt, packetSize > 0 else { return nil }
        // 40 ms worth of the target rate, 5 to 30 packets: enough spread to measure on a
        // 250 µs feedback clock, short enough not to hurt a path that cannot take it.
        let target = wanted * 1.1
        let packets = min(30, max(5, Int(target * 0.04 / 8) / packetSize))
        let cluster = Cluster(id: nextID, target: target, packets: packets, bytesPerPacket: packetSize)
        nextID += 1
        pending = Observation(cluster: cluster, sentAt: now)
        return cluster
    }

    /// One probe packet's fate from feedback.
    public mutating func record(cluster id: Int, arrival: Duration?, size: Int) {
        guard pending?.cluster.id == id else { return }
        if let arrival { pending?.received.append((arrival, size)) } else { pending?.lost += 1 }
    }

    /// The rate the pending burst measured, once its feedback is in: nil while waiting or when
    /// too much of it was lost to tell. Below 90 % of the target the probe failed and the next
    /// one waits longer; the measured rate still says what the path can carry.
    public mutating func verdict(now: Duration) -> Double? {
        guard let observation = pending else { return nil }
        let reported = observation.received.count + observation.lost
        guard reported >= observation.cluster.packets || now - observation.sentAt >= Self.verdictDelay else { return nil }
        pending = nil
        let bitrate = Self.measure(observation)
        if let bitrate, bitrate >= 0.9 * observation.cluster.target {
            succeeded += 1
            SFUMetrics.probesSucceeded.increment()
            interval = Self.firstInterval
            nextProbeAt = now + interval
            return bitrate
        }
        failed += 1
        SFUMetrics.probesFailed.increment()
        nextProbeAt = now + interval
        interval = min(Self.longestInterval, interval * 2)
        return bitrate
    }

    /// Bytes after the first arrival over the arrival spread, capped at the target; a burst
    /// that arrived within a millisecond met no bottleneck below the target.
    private static func measure(_ observation: Observation) -> Double? {
        let cluster = observation.cluster
        let received = observation.received.sorted { $0.arrival < $1.arrival }
        guard received.count >= 3, observation.lost * 3 < cluster.packets else { return nil }
        let spread = (received.last!.arrival - received.first!.arrival).seconds
        let bytes = received.dropFirst().reduce(0) { $0 + $1.size }
        guard spread >= 0.001 else { return cluster.target }
        return min(cluster.target, Double(bytes * 8) / spread)
    }
}
