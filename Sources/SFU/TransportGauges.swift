import Metrics

/// One transport's gauges on /metrics, labelled by session and broadcast: bitrate and loss
/// each way, and for subscribers the bandwidth estimate, round-trip time and the layer each
/// consumer forwards. Created when the transport connects, removed when it closes, so a scrape
/// shows only live transports.
final class TransportGauges {
    private let dimensions: [(String, String)]
    private let bitrate: Gauge
    private let loss: Gauge
    private let estimate: Gauge?
    private let roundTrip: Gauge?
    private var layers: [String: Gauge] = [:]

    enum Direction: String { case send, receive }

    init(session: String, broadcast: String, direction: Direction) {
        dimensions = [("session", session), ("broadcast", broadcast)]
        let directed = dimensions + [("direction", direction.rawValue)]
        bitrate = Gauge(label: "tally_sfu_transport_bitrate_bps", dimensions: directed)
        loss = Gauge(label: "tally_sfu_transport_loss_ratio", dimensions: directed)
        if direction == .send {
            estimate = Gauge(label: "tally_sfu_transport_estimate_bps", dimensions: dimensions)
            roundTrip = Gauge(label: "tally_sfu_transport_rtt_seconds", dimensions: dimensions)
        } else {
            estimate = nil
            roundTrip = nil
        }
    }

    func record(bitrate value: Double, loss lossRatio: Double) {
        bitrate.record(value)
        loss.record(lossRatio)
    }

    func record(estimate value: Double?, roundTrip seconds: Double?) {
        if let value { estimate?.record(value) }
        if let seconds { roundTrip?.record(seconds) }
    }

    /// The layer a consumer forwards; -1 while it sends nothing.
    func record(layer: Int?, mid: String) {
        let gauge = layers[mid] ?? Gauge(label: "tally_sfu_consumer_layer", dimensions: dimensions + [("mid", mid)])
        layers[mid] = gauge
        gauge.record(layer ?? -1)
    }

    func remove() {
        for gauge in [bitrate, loss] + [estimate, roundTrip].compactMap({ $0 }) + Array(layers.values) { gauge.destroy() }
        layers = [:]
    }
}
