import Foundation

/// Send-side bandwidth estimation for one subscriber transport, in the spirit of Google
/// Congestion Control (draft-ietf-rmcat-gcc-02): a loss-based bound and a delay-based bound
/// from the trend of one-way delay variation, the estimate being the lower of the two.
///
/// Fed with what transport-cc feedback reports about sent packets. The estimate never runs
/// more than half again above what the path demonstrably carried, unless a probe showed the
/// path can take more (see `BandwidthProber`). Time is passed in.
public struct BandwidthEstimator: Sendable {
    /// One sent packet as feedback described it.
    public struct PacketResult: Sendable {
        public var sentAt: Duration
        public var arrivedAt: Duration?
        public var size: Int

        public init(sentAt: Duration, arrivedAt: Duration?, size: Int) {
            self.sentAt = sentAt
            self.arrivedAt = arrivedAt
            self.size = size
        }
    }

    public enum Usage: Sendable, Equatable { case normal, overusing, underusing }

    public let minimum: Double
    public let maximum: Double
    public private(set) var estimate: Double
    public private(set) var usage: Usage = .normal
    public private(set) var acknowledgedBitrate: Double?
    private var lossBound: Double
    private var delayBound: Double
    private var lastUpdate: Duration?
    private var previousGroup: (sent: Duration, arrived: Duration)?
    private var accumulatedDelay: Double = 0
    private var smoothedDelay: Double = 0
    private var trendSamples: [(time: Double, delay: Double)] = []
    private var threshold: Double = 12.5
    /// Consecutive updates whose trend exceeded the threshold.
    private var overuseStreak = 0
    private var acknowledged: [(at: Duration, bytes: Int)] = []
    private var firstFeedbackAt: Duration?
    /// Packets reported and lost per feedback over the last second: one feedback covers too
    /// few packets for a loss ratio that means anything.
    private var lossHistory: [(at: Duration, reported: Int, lost: Int)] = []
    /// Backing off again before the last back-off could show would compound it (GCC §5.5, §6).
    private var lastDecreaseAt: Duration?
    static let decreaseInterval = Duration.milliseconds(300)
    /// The last successful probe: the path carried this much in a burst.
    private var probed: (bitrate: Double, at: Duration)?
    /// How long a probe result may hold the estimate above what media traffic has shown.
    static let probeValidity = Duration.seconds(5)

    public init(initial: Double = 1_000_000, minimum: Double = 100_000, maximum: Double = 20_000_000) {
        self.minimum = minimum
        self.maximum = maximum
        estimate = initial
        lossBound = initial
        delayBound = initial
    }

    /// Takes one feedback's worth of packet results (in sequence order) at `now`.
    public mutating func update(_ results: [PacketResult], now: Duration) {
        guard !results.isEmpty else { return }
        let interval = max(0.02, min(1, lastUpdate.map { (now - $0).seconds } ?? 0.1))
        lastUpdate = now

        // Acknowledged bitrate over the last half second: what the path demonstrably carried.
        // Until half a second of feedback is in, the window would understate it.
        if firstFeedbackAt == nil { firstFeedbackAt = now }
        for result in results where result.arrivedAt != nil { acknowledged.append((now, result.size)) }
        acknowledged.removeAll { now - $0.at > .milliseconds(500) }
        let bytes = acknowledged.reduce(0) { $0 + $1.bytes }
        if bytes > 0, let firstFeedbackAt, now - firstFeedbackAt >= .milliseconds(500) { acknowledgedBitrate = Double(bytes * 8) / 0.5 }

        // Loss-based bound (GCC §6): back off above 10 %, grow below 2 %.
        lossHistory.append((now, results.count, results.filter { $0.arrivedAt == nil }.count))
        lossHistory.removeAll { now - $0.at > .seconds(1) }
        let loss = Double(lossHistory.reduce(0) { $0 + $1.lost }) / Double(max(1, lossHistory.reduce(0) { $0 + $1.reported }))
        let mayDecrease = lastDecreaseAt.map { now - $0 >= Self.decreaseInterval } ?? true
        if loss > 0.10 {
            if mayDecrease {
                lossBound = max(minimum, lossBound * (1 - 0.5 * loss))
                lastDecreaseAt = now
            }
        } else if loss < 0.02 {
            lossBound = min(maximum, lossBound * pow(1.08, interval))
        }

        // Delay-based bound (GCC §5): the slope of accumulated delay variation between
        // packet groups; a rising trend means a queue is building.
        for result in results {
            guard let arrived = result.arrivedAt else { continue }
            if let previous = previousGroup {
                let variation = ((arrived - previous.arrived) - (result.sentAt - previous.sent)).seconds * 1000
                accumulatedDelay += variation
                smoothedDelay = 0.9 * smoothedDelay + 0.1 * accumulatedDelay
                trendSamples.append((arrived.seconds * 1000, smoothedDelay))
                if trendSamples.count > 20 { trendSamples.removeFirst() }
            }
            previousGroup = (result.sentAt, arrived)
        }
        let trend = slope(trendSamples) * Double(min(trendSamples.count, 60)) * 4
        // One reading over the threshold can be a scheduling hiccup; overuse must persist (GCC §5.4).
        overuseStreak = trend > threshold ? overuseStreak + 1 : 0
        if overuseStreak >= 2 {
            usage = .overusing
        } else if trend > threshold {
            usage = .normal
        } else if trend < -threshold {
            usage = .underusing
        } else {
            usage = .normal
        }
        // The threshold follows the trend (GCC §5.4): quickly down, slowly up, outliers ignored.
        if abs(trend) - threshold <= 15 {
            let gain = abs(trend) < threshold ? 0.039 : 0.0087
            threshold = min(600, max(6, threshold + gain * (abs(trend) - threshold) * min(interval * 1000, 100)))
        }

        switch usage {
        case .overusing where mayDecrease:
            delayBound = max(minimum, 0.85 * (acknowledgedBitrate ?? delayBound))
            lastDecreaseAt = now
        case .overusing:
            break
        case .normal:
            delayBound = min(maximum, delayBound * pow(1.08, interval))
        case .underusing:
            break
        }
        let ceiling = self.ceiling(now: now)
        lossBound = min(lossBound, ceiling)
        delayBound = min(delayBound, ceiling)
        estimate = max(minimum, min(lossBound, delayBound, maximum))
    }

    /// A probe burst got through at `bitrate`: the estimate may rise to it at once, unless a
    /// queue is building right now.
    public mutating func applyProbe(bitrate: Double, now: Duration) {
        guard usage != .overusing else { return }
        let bitrate = min(bitrate, maximum)
        probed = (bitrate, now)
        lossBound = max(lossBound, bitrate)
        delayBound = max(delayBound, bitrate)
        estimate = max(minimum, min(lossBound, delayBound, maximum))
    }

    /// GCC §5.5 keeps the delay-based estimate within 1.5× the received rate: growth beyond
    /// what was ever sent is a guess, and a guess can take a path down at the next layer up.
    private func ceiling(now: Duration) -> Double {
        guard let acknowledgedBitrate else { return maximum }
        var ceiling = max(minimum, 1.5 * acknowledgedBitrate)
        if let probed, now - probed.at < Self.probeValidity { ceiling = max(ceiling, probed.bitrate) }
        return ceiling
    }

    /// Least-squares slope of delay (ms) over time (ms).
    private func slope(_ samples: [(time: Double, delay: Double)]) -> Double {
        guard samples.count >= 2 else { return 0 }
        let meanTime = samples.map(\.time).reduce(0, +) / Double(samples.count)
        let meanDelay = samples.map(\.delay).reduce(0, +) / Double(samples.count)
        var numerator = 0.0
        var denominator = 0.0
        for sample in samples {
            numerator += (sample.time - meanTime) * (sample.delay - meanDelay)
            denominator += (sample.time - meanTime) * (sample.time - meanTime)
        }
        return denominator == 0 ? 0 : numerator / denominator
    }
}
