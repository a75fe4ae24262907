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

/// HLS for viewers: segments cut on keyframes once `targetDuration` has passed, and a
/// sliding live playlist, written atomically into `directory`. The source may change its
/// tracks mid-stream (an ingest's publisher returning, a slate filling in): the next
/// keyframe then opens a segment marked `#EXT-X-DISCONTINUITY`.
///
/// Segments are MPEG-TS while the video is H.264 or HEVC. The first track MPEG-TS cannot
/// carry (AV1, VP9) turns the output to fMP4 (CMAF) for good: each run of tracks gets an
/// initialization section (`init{n}.mp4`, named by its first segment), announced by
/// `#EXT-X-MAP`, and `segment{n}.m4s` fragments after it. It stays fMP4 because a map
/// applies to every segment after it, so TS segments could not follow.
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
        /// The initialization section of an fMP4 segment; nil for TS.
        var map: String?

        var name: String { HLSOutput.segmentName(sequence, fragmented: map != nil) }
    }

    private enum SegmentWriter {
        /// One TS file per segment.
        case transportStream(ContainerWriter)
        /// The run's CMAF writer; the segment is what it has been given since the last cut.
        case fragment
    }

    private struct State: @unchecked Sendable {
        var video: ContainerWriter.VideoTrack
        var audio: ContainerWriter.AudioTrack?
        var frameDuration: Int64
        var current: (writer: SegmentWriter, sequence: Int, start: Int64, discontinuity: Bool)?
        /// Set once a track needed fMP4: every later segment is fMP4.
        var fragmented = false
        /// The CMAF writer of the current run of tracks, and its initialization section's name.
        var cmaf: (writer: ContainerWriter, map: String)?
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

    public static func segmentName(_ sequence: Int, fragmented: Bool = false) -> String {
        "segment\(sequence).\(fragmented ? "m4s" : "ts")"
    }

    public static func initializationName(_ sequence: Int) -> String { "init\(sequence).mp4" }

    /// The media type of a file this output writes, by its name; nil for any other name.
    public static func contentType(of name: String) -> String? {
        if name == playlistName { return "application/vnd.apple.mpegurl" }
        for (prefix, suffix, type) in [("segment", ".ts", "video/mp2t"), ("segment", ".m4s", "video/iso.segment"), ("init", ".mp4", "video/mp4")] {
            guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { continue }
            let number = name.dropFirst(prefix.count).dropLast(suffix.count)
            if !number.isEmpty, number.count <= 18, number.allSatisfy({ ("0"..."9").contains($0) }) { return type }
        }
        return nil
    }

    /// The sequence number in a segment's or initialization section's name.
    public static func sequence(of name: String) -> Int? {
        guard contentType(of: name) != nil, name != playlistName else { return nil }
        return Int(name.drop { !$0.isNumber }.prefix { $0.isNumber })
    }

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
                    if let writer = openSegment(&state, sequence: sequence) {
                        // The first segment of all needs no marker: nothing came before it.
                        state.current = (writer, sequence, packet.pts, state.discontinuityPending && sequence > 0)
                    }
                    state.discontinuityPending = false
                }
            }
            guard !state.discontinuityPending, let current = state.current else { return }
            switch current.writer {
            case .transportStream(let file): try? file.write(packet)
            case .fragment: try? state.cmaf?.writer.write(packet)
            }
            if packet.kind == .video { state.end = packet.pts + state.frameDuration }
        }
    }

    /// A writer for segment `sequence`: a TS file, or the run's CMAF writer, opened afresh
    /// (with its initialization section written out) when the tracks changed.
    private func openSegment(_ state: inout State, sequence: Int) -> SegmentWriter? {
        if !ContainerWriter.mpegTSCarries(state.video.codec) { state.fragmented = true }
        guard state.fragmented else {
            let path = directory.appendingPathComponent(Self.segmentName(sequence)).path
            return (try? ContainerWriter(format: .mpegTS, path: path, video: state.video, audio: state.audio)).map { .transportStream($0) }
        }
        if state.cmaf == nil || state.discontinuityPending {
            try? state.cmaf?.writer.finish()
            state.cmaf = nil
            let map = Self.initializationName(sequence)
            guard let writer = try? ContainerWriter(format: .cmafSegments, path: directory.appendingPathComponent(map).path,
                                                    video: state.video, audio: state.audio),
                  writeAtomically(writer.initialization, name: map) else { return nil }
            state.cmaf = (writer, map)
        }
        return .fragment
    }

    private func writeAtomically(_ bytes: [UInt8], name: String) -> Bool {
        let temporary = directory.appendingPathComponent(".\(name).tmp")
        guard FileManager.default.createFile(atPath: temporary.path, contents: Data(bytes)) else { return false }
        return rename(temporary.path, directory.appendingPathComponent(name).path) == 0
    }

    private func close(_ state: inout State, endingAt end: Int64) {
        guard let current = state.current else { return }
        state.current = nil
        var map: String?
        switch current.writer {
        case .transportStream(let file):
            try? file.finish()
        case .fragment:
            guard let cmaf = state.cmaf, let bytes = try? cmaf.writer.cutSegment(), !bytes.isEmpty,
                  writeAtomically(bytes, name: Self.segmentName(current.sequence, fragmented: true)) else { return }
            map = cmaf.map
        }
        state.segments.append(Segment(sequence: current.sequence, duration: max(0.1, Double(end - current.start) / 1_000_000),
                                      discontinuity: current.discontinuity, map: map))
        segmentCounter.increment()
        // Keep a few segments past the window for players that are a little behind.
        while state.segments.count > windowSize + 4 {
            let old = state.segments.removeFirst()
            if old.discontinuity { state.droppedDiscontinuities += 1 }
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(old.name))
            if let oldMap = old.map, oldMap != state.cmaf?.map, !state.segments.contains(where: { $0.map == oldMap }) {
                try? FileManager.default.removeItem(at: directory.appendingPathComponent(oldMap))
            }
        }
        writePlaylist(state, ended: false)
    }

    private func writePlaylist(_ state: State, ended: Bool) {
        let visible = ended ? Array(state.segments) : Array(state.segments.suffix(windowSize))
        guard let first = visible.first else { return }
        // RFC 8216 §4.3.3.1: each duration, rounded to the nearest second, fits the target.
        let target = Int((visible.map(\.duration).max() ?? targetDuration).rounded())
        let hiddenDiscontinuities = state.droppedDiscontinuities + state.segments.prefix(state.segments.count - visible.count).filter(\.discontinuity).count
        // fMP4 segments need version 7 (RFC 8216 §7; Apple's authoring rules ask for it).
        let version = visible.contains { $0.map != nil } ? 7 : 3
        var text = "#EXTM3U\n#EXT-X-VERSION:\(version)\n#EXT-X-TARGETDURATION:\(target)\n#EXT-X-MEDIA-SEQUENCE:\(first.sequence)\n"
        if hiddenDiscontinuities > 0 { text += "#EXT-X-DISCONTINUITY-SEQUENCE:\(hiddenDiscontinuities)\n" }
        if ended { text += "#EXT-X-PLAYLIST-TYPE:EVENT\n" }
        var map: String?
        for segment in visible {
            if segment.discontinuity { text += "#EXT-X-DISCONTINUITY\n" }
            if let segmentMap = segment.map, segmentMap != map { text += "#EXT-X-MAP:URI=\"\(segmentMap)\"\n" }
            map = segment.map
            text += "#EXTINF:\(String(format: "%.3f", segment.duration)),\n\(segment.name)\n"
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
                try? state.cmaf?.writer.finish()
                state.finished = true
                writePlaylist(state, ended: true)
            }
        }
    }
}
