import Metrics
import Synchronization

/// A gauge on /metrics that is the sum of many sources' figures: per-session and per-stream
/// values reach the unauthenticated /metrics only in aggregate (no session, broadcast or
/// stream ids there, and a fixed number of series whatever the load).
public final class SummedGauge: Sendable {
    private let gauge: Gauge
    private let total = Mutex(0.0)

    public init(label: String, dimensions: [(String, String)] = []) {
        gauge = Gauge(label: label, dimensions: dimensions)
    }

    /// One source's share: each `record` replaces its previous value in the sum.
    public final class Share: Sendable {
        private let sum: SummedGauge
        private let last = Mutex(0.0)

        init(_ sum: SummedGauge) {
            self.sum = sum
        }

        public func record(_ value: Double) {
            let change = last.withLock { last in
                defer { last = value }
                return value - last
            }
            sum.add(change)
        }

        /// Takes this source out of the sum.
        public func remove() { record(0) }
    }

    public func share() -> Share { Share(self) }

    fileprivate func add(_ change: Double) {
        let value = total.withLock { total in
            total += change
            return total
        }
        gauge.record(value)
    }
}

/// One transport's figures as the authenticated debug API shows them.
public struct TransportFigures: Sendable, Equatable {
    public enum Direction: String, Sendable { case send, receive }

    public var session: String
    public var broadcast: String
    public var direction: Direction
    public var bitrate = 0.0
    public var lossRatio = 0.0
    /// Subscribers only: the bandwidth estimate and the round-trip time.
    public var estimate: Double?
    public var roundTripSeconds: Double?
    /// Subscribers only: the simulcast layer each video section gets, by mid (-1: none).
    public var layers: [String: Int] = [:]
}

/// Every open transport's figures, for the debug API; what /metrics gets is their sums.
public enum TransportBoard {
    private static let figures = Mutex<[String: TransportFigures]>([:])
    static let bitrate = [TransportFigures.Direction.send, .receive].reduce(into: [TransportFigures.Direction: SummedGauge]()) {
        $0[$1] = SummedGauge(label: "tally_sfu_bitrate_bps", dimensions: [("direction", $1.rawValue)])
    }
    static let transports = [TransportFigures.Direction.send, .receive].reduce(into: [TransportFigures.Direction: SummedGauge]()) {
        $0[$1] = SummedGauge(label: "tally_sfu_transports", dimensions: [("direction", $1.rawValue)])
    }

    /// The open transports of one broadcast (its router), sorted by session.
    public static func transports(broadcast: String) -> [TransportFigures] {
        figures.withLock { $0.values.filter { $0.broadcast == broadcast } }.sorted { $0.session < $1.session }
    }

    /// This node's open transports by direction and what it sends, for its heartbeat.
    public static func totals() -> (publishers: Int, subscribers: Int, sendBitsPerSecond: Double) {
        figures.withLock { figures in
            figures.values.reduce(into: (publishers: 0, subscribers: 0, sendBitsPerSecond: 0.0)) { totals, entry in
                switch entry.direction {
                case .receive: totals.publishers += 1
                case .send:
                    totals.subscribers += 1
                    totals.sendBitsPerSecond += entry.bitrate
                }
            }
        }
    }

    static func update(_ entry: TransportFigures) {
        figures.withLock { $0[entry.session] = entry }
    }

    static func remove(session: String) {
        figures.withLock { _ = $0.removeValue(forKey: session) }
    }
}

/// One transport's figures while it is open: kept on the board for the debug API and added
/// into /metrics' per-direction sums. Removed when the transport closes.
final class TransportGauges {
    private var entry: TransportFigures
    private let bitrateShare: SummedGauge.Share
    private let countShare: SummedGauge.Share

    typealias Direction = TransportFigures.Direction

    init(session: String, broadcast: String, direction: Direction) {
        entry = TransportFigures(session: session, broadcast: broadcast, direction: direction)
        bitrateShare = TransportBoard.bitrate[direction]!.share()
        countShare = TransportBoard.transports[direction]!.share()
        countShare.record(1)
        TransportBoard.update(entry)
    }

    func record(bitrate value: Double, loss lossRatio: Double) {
        entry.bitrate = value
        entry.lossRatio = lossRatio
        bitrateShare.record(value)
        TransportBoard.update(entry)
    }

    func record(estimate value: Double?, roundTrip seconds: Double?) {
        if let value { entry.estimate = value }
        if let seconds { entry.roundTripSeconds = seconds }
        TransportBoard.update(entry)
    }

    /// The layer a consumer forwards; -1 while it sends nothing.
    func record(layer: Int?, mid: String) {
        entry.layers[mid] = layer ?? -1
        TransportBoard.update(entry)
    }

    func remove() {
        bitrateShare.remove()
        countShare.remove()
        TransportBoard.remove(session: entry.session)
    }
}
