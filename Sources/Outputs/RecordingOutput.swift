import Foundation
import MediaCodecs
import Synchronization

/// Records the program to fragmented MP4 as it goes: a fragment at least every second,
/// flushed at once, so a crash leaves a file that plays up to its last second.
public final class RecordingOutput: ProgramOutput {
    public let path: String
    private let writer: SerialWriter
    private let file: Mutex<ContainerWriter?>
    private let progress = Mutex<(duration: Double, firstPTS: Int64?)>((0, nil))

    public init(path: String, format: ContainerWriter.VideoTrack, audio: ContainerWriter.AudioTrack) throws(CodecError) {
        self.path = path
        writer = SerialWriter(label: "tally.recording", dropCounter: OutputMetrics.droppedRecording)
        file = Mutex(try ContainerWriter(format: .fragmentedMP4, path: path, video: format, audio: audio))
    }

    public func offer(_ packet: ProgramPacket) {
        writer.submit(packet) { [self] packet in
            file.withLock { try? $0?.write(packet) }
            progress.withLock { state in
                let first = state.firstPTS ?? packet.pts
                state.firstPTS = first
                state.duration = max(state.duration, Double(packet.pts - first) / 1_000_000)
            }
        }
    }

    /// Seconds recorded so far, and the file's size.
    public var status: (duration: Double, size: Int64) {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0
        return (progress.withLock { $0.duration }, size ?? 0)
    }

    /// Writes what is queued and completes the file.
    public func finish() {
        writer.sync { file.withLock { try? $0?.finish() } }
    }
}
