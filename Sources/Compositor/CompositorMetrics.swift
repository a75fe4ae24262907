import Metrics

/// Counters on /metrics for every program's mix loop.
enum CompositorMetrics {
    static let frames = Counter(label: "tally_program_frames_total")
    /// Ticks that started more than half a frame late.
    static let lateFrames = Counter(label: "tally_program_late_frames_total")
    /// Ticks given up on to keep the clock: more than a frame late.
    static let skippedFrames = Counter(label: "tally_program_skipped_frames_total")
    static let encodeErrors = Counter(label: "tally_program_encode_errors_total")
}
