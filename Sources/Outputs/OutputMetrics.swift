import Metrics

/// Counters on /metrics for the program's outputs.
public enum OutputMetrics {
    /// Packets an output dropped to catch up (up to the next keyframe), by output kind.
    static let droppedRTMP = Counter(label: "tally_program_dropped_packets_total", dimensions: [("output", "rtmp")])
    static let droppedRecording = Counter(label: "tally_program_dropped_packets_total", dimensions: [("output", "recording")])
    static let droppedHLS = Counter(label: "tally_program_dropped_packets_total", dimensions: [("output", "hls")])
    static let reconnects = Counter(label: "tally_program_destination_reconnects_total")
    static let failures = Counter(label: "tally_program_destination_failures_total")
    static let segments = Counter(label: "tally_program_hls_segments_total")
    /// Recordings that stopped early: a refused write, the size limit, a disk nearly full.
    static let recordingFailures = Counter(label: "tally_recording_failures_total")
}
