/// Which simulcast layers each publisher should encode (LiveKit calls this dynacast): a
/// layer nobody forwards costs the publisher's CPU and uplink for nothing.
///
/// A layer is wanted when some unpaused consumer's wanted layer is at or above it, and the
/// lowest layer is always wanted, so a new subscriber can start at once. A layer that has
/// never been measured is left alone: the publisher is not sending it, and pausing it would
/// leave nothing to judge its cost by when it is wanted. Turning layers on takes effect at
/// once; turning them off waits until they have been unwanted for `holdDown`, so an
/// allocation that wavers does not make the publisher flap.
///
/// Not thread-safe; time is passed in.
public struct PublisherLayerPolicy<Producer: Hashable & Sendable>: Sendable {
    public var holdDown: Duration = .seconds(5)
    private var sending: [Producer: [Bool]] = [:]
    private var unwantedSince: [Producer: Duration] = [:]

    public init() {}

    /// What the publisher of `producer` was last told to send, by layer (lowest first); nil
    /// until told anything, which means everything.
    public func sending(_ producer: Producer) -> [Bool]? {
        sending[producer]
    }

    /// Re-evaluates one producer. `measured[i]` says whether layer `i` has ever carried media;
    /// `wanted` holds each unpaused consumer's wanted layer. Returns the layers to send when
    /// the publisher must be told something new.
    public mutating func evaluate(producer: Producer, measured: [Bool], wanted: [Int], now: Duration) -> [Bool]? {
        guard !measured.isEmpty else { return nil }
        let top = wanted.max() ?? 0
        let desired = measured.indices.map { $0 == 0 || $0 <= top || !measured[$0] }
        let current = sending[producer] ?? Array(repeating: true, count: measured.count)
        if desired == current {
            unwantedSince[producer] = nil
            return nil
        }
        if zip(desired, current).contains(where: { $0 && !$1 }) {
            return apply(desired, to: producer)
        }
        guard let since = unwantedSince[producer] else {
            unwantedSince[producer] = now
            return nil
        }
        return now - since >= holdDown ? apply(desired, to: producer) : nil
    }

    public mutating func remove(producer: Producer) {
        sending[producer] = nil
        unwantedSince[producer] = nil
    }

    private mutating func apply(_ layers: [Bool], to producer: Producer) -> [Bool] {
        sending[producer] = layers
        unwantedSince[producer] = nil
        return layers
    }
}
