import Metrics

/// Counters on /metrics: every packet the SFU does not forward is counted with its reason.
enum SFUMetrics {
    static let forwarded = Counter(label: "tally_sfu_forwarded_packets_total")
    /// The share of those built and sent by fan-out helper threads rather than the event loop.
    static let forwardedByHelpers = Counter(label: "tally_sfu_helper_forwarded_packets_total")
    static let droppedNotAKeyframe = Counter(label: "tally_sfu_dropped_packets_total", dimensions: [("reason", "not_a_keyframe")])
    static let droppedOtherLayer = Counter(label: "tally_sfu_dropped_packets_total", dimensions: [("reason", "other_layer")])
    static let droppedBeforeSwitch = Counter(label: "tally_sfu_dropped_packets_total", dimensions: [("reason", "before_switch")])
    static let droppedUnknownStream = Counter(label: "tally_sfu_dropped_packets_total", dimensions: [("reason", "unknown_stream")])
    static let droppedDuplicate = Counter(label: "tally_sfu_dropped_packets_total", dimensions: [("reason", "duplicate")])
    static let droppedPaused = Counter(label: "tally_sfu_dropped_packets_total", dimensions: [("reason", "paused")])
    static let retransmitted = Counter(label: "tally_sfu_retransmitted_packets_total")
    static let retransmissionCacheMisses = Counter(label: "tally_sfu_dropped_packets_total", dimensions: [("reason", "cache_miss")])
    static let nacksToPublishers = Counter(label: "tally_sfu_nack_requests_total")
    static let keyframeRequests = Counter(label: "tally_sfu_keyframe_requests_total")
    static let repairedArrivals = Counter(label: "tally_sfu_repaired_packets_total")
    static let probesSucceeded = Counter(label: "tally_sfu_bandwidth_probes_total", dimensions: [("result", "succeeded")])
    static let probesFailed = Counter(label: "tally_sfu_bandwidth_probes_total", dimensions: [("result", "failed")])
    static let probePackets = Counter(label: "tally_sfu_probe_packets_total")
}
