/// A token bucket per connection: `burst` messages at once, refilled at `perSecond`. A client
/// over it gets `rate_limited` errors; one that keeps going (`strikes` refusals in a row) is
/// disconnected. Time is passed in.
public struct MessageRateLimiter: Sendable {
    public enum Verdict: Equatable, Sendable {
        case allow
        case refuse
        case disconnect
    }

    public let perSecond: Double
    public let burst: Double
    public let strikes: Int
    private var tokens: Double
    private var refilledAt: Duration?
    private var refusalsInARow = 0

    public init(perSecond: Double = 20, burst: Double = 40, strikes: Int = 100) {
        self.perSecond = perSecond
        self.burst = burst
        self.strikes = strikes
        tokens = burst
    }

    public mutating func admit(now: Duration) -> Verdict {
        if let last = refilledAt {
            let elapsed = Double((now - last).components.seconds) + Double((now - last).components.attoseconds) / 1e18
            tokens = min(burst, tokens + elapsed * perSecond)
        }
        refilledAt = now
        guard tokens >= 1 else {
            refusalsInARow += 1
            return refusalsInARow >= strikes ? .disconnect : .refuse
        }
        tokens -= 1
        refusalsInARow = 0
        return .allow
    }
}
