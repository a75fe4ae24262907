import Foundation
import MediaCodecs
import Metrics
import Synchronization

/// Where an HLS output counts its segments and catch-up drops on /metrics.
public struct HLSCounters: Sendable {
    public var dropped: Counter
    public var segments: Counter

    public init(dropped: Counter, segments: Counter) {
        self.dropped = dropped
        self.segments = segments
    }

    /// A broadcast's program.
    public static let program = HLSCounters(dropped: OutputMetrics.droppedHLS, segments: OutputMetrics.segments)
}

/// HLS for viewers: MPEG-TS segments cut on keyframes once `targetDuration` has passed,
/// and a sliding live playlist, written atomically into `directory`. The source may change
/// its tracks mid-stream (an ingest's publisher returning, a slate filling in): the next
/// keyframe then opens a segment marked `#EXT-X-DISCONTINUITY`.
public final class HLSOutput: ProgramOutput {
    public let directory: URL
    public let targetDuration: Double
    public let windowSize: Int
    private let writer: SerialWriter
    private let segmentCounter: Counter
    private let state: Mutex<State>

    private struct Segment {
        var sequence: Int
        var duration: Double
        var discontinuity: Bool
    }

    private struct State: @unchecked Sendable {
        var video: ContainerWriter.VideoTrack
        var audio: ContainerWriter.AudioTrack?
        var frameDuration: Int64
        var current: (writer: ContainerWriter, sequence: Int, start: Int64, discontinuity: Bool)?
        var segments: [Segment] = []
        /// Discontinuities in segments already dropped from `segments`.
        var droppedDiscontinuities = 0
        var nextSequence = 0
        var finished = false
        /// Set by a track change: the next keyframe starts a discontinuous segment.
        var discontinuityPending = false
        /// The end of the last video frame written: where the last segment stops.
        var end: Int64 = 0

        init(video: ContainerWriter.VideoTrack, audio: ContainerWriter.AudioTrack?) {
            self.video = video
            self.audio = audio
            frameDuration = 1_000_000 / Int64(max(1, video.framesPerSecond))
        }
    }

    public static let playlistName = "index.m3u8"

    public init(directory: URL, video: ContainerWriter.VideoTrack, audio: ContainerWriter.AudioTrack?,
                targetDuration: Double = 2, windowSize: Int = 6, counters: HLSCounters = .program) throws {
        self.directory = directory
        self.targetDuration = targetDuration
        self.windowSize = windowSize
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        writer = SerialWriter(label: "tally.hls", dropCounter: counters.dropped)
        segmentCounter = counters.segments
        state = Mutex(State(video: video, audio: audio))
    }

    /// New tracks for what follows, in order with the packets offered before and after.
    public func changeTracks(video: ContainerWriter.VideoTrack, audio: ContainerWriter.AudioTrack?) {
        writer.perform { [self] in
            state.withLock { state in
                state.video = video
                state.audio = audio
                state.frameDuration = 1_000_000 / Int64(max(1, video.framesPerSecond))
                state.discontinuityPending = true
            }
        }
    }

    public static func segmentName(_ sequence: Int) -> String { "segment\(sequence).ts" }

    public func offer(_ packet: ProgramPacket) {
        writer.submit(packet) { [self] packet in write(packet) }
    }

    private func write(_ packet: ProgramPacket) {
        state.withLock { state in
            guard !state.finished else { return }
            if packet.kind == .video, packet.isKeyframe {
                let due = state.current.map { Double(packet.pts - $0.start) / 1_000_000 >= targetDuration * 0.97 } ?? true
                if due || state.discontinuityPending {
                    close(&state, endingAt: state.discontinuityPending ? state.end : packet.pts)
                    let sequence = state.nextSequence
                    state.nextSequence += 1
                    let path = directory.appendingPathComponent(Self.segmentName(sequence)).path
                    if let file = try? ContainerWriter(format: .mpegTS, path: path, video: state.video, audio: state.audio) {
                        // The first segment of all needs no marker: nothing came before it.
                        state.current = (file, sequence, packet.pts, state.discontinuityPending && sequence > 0)
                    }
                    state.discontinuityPending = false
                }
            }
            guard !state.discontinuityPending else { return }
            try? state.current?.writer.write(packet)
            if packet.kind == .video { state.end = packet.pts + state.frameDuration }
        }
    }

    private func close(_ state: inout State, endingAt end: Int64) {
        guard let current = state.current else { return }
        try? current.writer.finish()
        state.current = nil
        state.segments.append(Segment(sequence: current.sequence, duration: max(0.1, Double(end - current.start) / 1_000_000),
                                      discontinuity: current.discontinuity))
        segmentCounter.increment()
        // Keep a few segments past the window for players that are a little behind.
        while state.segments.count > windowSize + 4 {
            let old = state.segments.removeFirst()
            if old.discontinuity { state.droppedDiscontinuities += 1 }
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(Self.segmentName(old.sequence)))
        }
        writePlaylist(state, ended: false)
    }

    private func writePlaylist(_ state: State, ended: Bool) {
        let visible = ended ? Array(state.segments) : Array(state.segments.suffix(windowSize))
        guard let first = visible.first else { return }
        // RFC 8216 §4.3.3.1: each duration, rounded to the nearest second, fits the target.
        let target = Int((visible.map(\.duration).max() ?? targetDuration).rounded())
        let hiddenDiscontinuities = state.droppedDiscontinuities + state.segments.prefix(state.segments.count - visible.count).filter(\.discontinuity).count
        var text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:\(target)\n#EXT-X-MEDIA-SEQUENCE:\(first.sequence)\n"
        if hiddenDiscontinuities > 0 { text += "#EXT-X-DISCONTINUITY-SEQUENCE:\(hiddenDiscontinuities)\n" }
        if ended { text += "#EXT-X-PLAYLIST-TYPE:EVENT\n" }
        for segment in visible {
            if segment.discontinuity { text += "#EXT-X-DISCONTINUITY\n" }
            text += "#EXTINF:\(String(format: "%.3f", segment.duration)),\n\(Self.segmentName(segment.sequence))\n"
        }
        if ended { text += "#EXT-X-ENDLIST\n" }
        let temporary = directory.appendingPathComponent(".\(Self.playlistName).tmp")
        try? text.write(to: temporary, atomically: false, encoding: .utf8)
        _ = rename(temporary.path, directory.appendingPathComponent(Self.playlistName).path)
    }

    /// Closes the last segment and ends the playlist.
    public func finish() {
        writer.sync { [self] in
            state.withLock { state in
                guard !state.finished else { return }
                close(&state, endingAt: state.end)
                state.finished = true
                writePlaylist(state, ended: true)
            }
        }
    }
}
