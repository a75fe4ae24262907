import SDP

/// Why a consumer sends nothing (LiveKit's forwarder keeps such reasons too): logs, the
/// debug API and tests can say what held a stream back.
public enum PauseReason: Sendable, Equatable {
    /// Not even the lowest layer fits what is left of the estimate.
    case bandwidth(available: Double, lowestLayer: Double)
}

/// Shares one subscriber's bandwidth estimate among its consumers: audio first, then each
/// video consumer in turn gets the highest layer that fits (25 % headroom to go up, none to
/// stay), and video pauses before audio suffers. Pure: it reads figures and returns
/// decisions, which the subscriber's sink applies.
public enum BandwidthAllocator {
    /// What climbing a layer must leave spare, as a share of that layer's rate.
    public static let upgradeHeadroom = 1.25
    /// What an audio track is assumed to need at least, whatever it measures now.
    public static let audioFloor = 64_000.0

    /// One consumer as the allocator sees it.
    public struct Request: Sendable, Equatable {
        public var kind: MediaKind
        /// The producer's measured rate per layer, lowest first; empty when it is gone.
        public var layerBitrates: [Double]
        /// The layers the producer sends now, lowest first.
        public var selectable: [Int]
        public var isSimulcast: Bool
        /// The layer the consumer forwards now.
        public var currentLayer: Int?
        /// The most the subscriber wants (nil: the best there is).
        public var preferredLayer: Int?

        public init(kind: MediaKind, layerBitrates: [Double], selectable: [Int], isSimulcast: Bool, currentLayer: Int?, preferredLayer: Int?) {
            self.kind = kind
            self.layerBitrates = layerBitrates
            self.selectable = selectable
            self.isSimulcast = isSimulcast
            self.currentLayer = currentLayer
            self.preferredLayer = preferredLayer
        }
    }

    public enum Decision: Sendable, Equatable {
        /// Nothing to decide: audio, a single-layer stream, a producer that sends nothing yet.
        case unchanged
        /// Forward this layer at most.
        case target(layer: Int)
        case pause(PauseReason)
    }

    public struct Allocation: Sendable, Equatable {
        /// One per request, in order.
        public var decisions: [Decision]
        /// What every consumer at its best would need (with headroom for those held below
        /// it): the rate a probe tries to reach.
        public var wanted: Double
        /// Video consumers held below their best layer, in request order: where a probe's
        /// packets can go.
        public var heldBelowBest: [Int]
    }

    public static func allocate(_ requests: [Request], estimate: Double) -> Allocation {
        var budget = estimate
        var wanted = 0.0
        var decisions = Array(repeating: Decision.unchanged, count: requests.count)
        var held: [Int] = []
        for request in requests where request.kind == .audio {
            let rate = max(request.layerBitrates.first ?? 0, audioFloor)
            budget -= rate
            wanted += rate
        }
        for (index, request) in requests.enumerated() where request.kind == .video {
            let selectable = request.selectable.filter { $0 <= (request.preferredLayer ?? .max) && request.layerBitrates.indices.contains($0) }
            guard request.isSimulcast, let best = selectable.last else { continue }
            let fitting = selectable.filter { layer in
                let rate = request.layerBitrates[layer]
                return layer <= (request.currentLayer ?? -1) ? rate <= budget : rate * upgradeHeadroom <= budget
            }
            if let layer = fitting.last {
                decisions[index] = .target(layer: layer)
                budget -= request.layerBitrates[layer]
            } else {
                decisions[index] = .pause(.bandwidth(available: budget, lowestLayer: request.layerBitrates[selectable[0]]))
            }
            let top = request.layerBitrates[best]
            if fitting.last != best {
                wanted += top * upgradeHeadroom
                held.append(index)
            } else {
                wanted += top
            }
        }
        return Allocation(decisions: decisions, wanted: wanted, heldBelowBest: held)
    }
}
