import MediaCodecs

/// One clock for everything a stream's viewers see, across publishers coming and going and
/// the slate between them: each source is shifted to start where the last one ended, so
/// timestamps only ever move forward.
struct IngestTimeline {
    /// Added to a source's timestamps; nil until the source's first packet.
    private var offset: Int64?
    private var lastSourceDTS: Int64 = 0
    /// Where the next source starts: just past the furthest packet so far.
    private(set) var end: Int64 = 0
    /// The gap left between sources, about one frame.
    static let joinGap: Int64 = 33_333
    /// A source that jumps further than this, either way, is treated as a new source.
    static let maxJump: Int64 = 10_000_000

    /// The next packet starts a new source.
    mutating func beginSource() {
        offset = nil
    }

    mutating func map(_ packet: ProgramPacket) -> ProgramPacket {
        if let offset, abs(packet.dts - lastSourceDTS) > Self.maxJump || packet.dts + offset < end - Self.maxJump {
            self.offset = nil
        }
        let offset = self.offset ?? (end + (end > 0 ? Self.joinGap : 0) - packet.dts)
        self.offset = offset
        lastSourceDTS = packet.dts
        var mapped = packet
        mapped.dts += offset
        mapped.pts += offset
        end = max(end, mapped.dts)
        return mapped
    }
}
