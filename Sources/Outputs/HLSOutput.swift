import Foundation
import MediaCodecs
import Synchronization

/// HLS for viewers: MPEG-TS segments cut on keyframes once `targetDuration` has passed,
/// and a sliding live playlist, written atomically into `directory`.
public final class HLSOutput: ProgramOutput {
    public let directory: URL
    public let targetDuration: Double
    public let windowSize: Int
    private let writer: SerialWriter
    private let state: Mutex<State>
    private let video: ContainerWriter.VideoTrack
    private let audio: ContainerWriter.AudioTrack
    private let frameDuration: Int64

    private struct State: @unchecked Sendable {
        var current: (writer: ContainerWriter, sequence: Int, start: Int64)?
        var segments: [(sequence: Int, duration: Double)] = []
        var nextSequence = 0
        var finished = false
        /// The end of the last video frame written: where the last segment stops.
        var end: Int64 = 0
    }

    public static let playlistName = "index.m3u8"

    public init(directory: URL, video: ContainerWriter.VideoTrack, audio: ContainerWriter.AudioTrack,
                targetDuration: Double = 2, windowSize: Int = 6) throws {
        self.directory = directory
        self.targetDuration = targetDuration
        self.windowSize = windowSize
        self.video = video
        self.audio = audio
        frameDuration = 1_000_000 / Int64(max(1, video.framesPerSecond))
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        writer = SerialWriter(label: "tally.hls", dropCounter: OutputMetrics.droppedHLS)
        state = Mutex(State())
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
                if due {
                    close(&state, endingAt: packet.pts)
                    let sequence = state.nextSequence
                    state.nextSequence += 1
                    let path = directory.appendingPathComponent(Self.segmentName(sequence)).path
                    if let file = try? ContainerWriter(format: .mpegTS, path: path, video: video, audio: audio) {
                        state.current = (file, sequence, packet.pts)
                    }
                }
            }
            try? state.current?.writer.write(packet)
            if packet.kind == .video { state.end = packet.pts + frameDuration }
        }
    }

    private func close(_ state: inout State, endingAt end: Int64) {
        guard let current = state.current else { return }
        try? current.writer.finish()
        state.current = nil
        state.segments.append((current.sequence, max(0.1, Double(end - current.start) / 1_000_000)))
        OutputMetrics.segments.increment()
        // Keep a few segments past the window for players that are a little behind.
        while state.segments.count > windowSize + 4 {
            let old = state.segments.removeFirst()
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(Self.segmentName(old.sequence)))
        }
        writePlaylist(state, ended: false)
    }

    private func writePlaylist(_ state: State, ended: Bool) {
        let visible = ended ? Array(state.segments) : Array(state.segments.suffix(windowSize))
        guard let first = visible.first else { return }
        let target = Int((visible.map(\.duration).max() ?? targetDuration).rounded(.up))
        var text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:\(target)\n#EXT-X-MEDIA-SEQUENCE:\(first.sequence)\n"
        if ended { text += "#EXT-X-PLAYLIST-TYPE:EVENT\n" }
        for segment in visible {
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
