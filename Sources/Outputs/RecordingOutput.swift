import Foundation
import MediaCodecs
import Synchronization

/// Records the program to fragmented MP4 as it goes: a fragment at least every second,
/// flushed at once, so a crash leaves a file that plays up to its last second.
///
/// A recording either records or has failed, with why: a write the disk refused, the size
/// limit, or `fail` (the server found the disk nearly full). Once failed it writes nothing
/// more, and its duration counts only what was written, so it never claims more than the
/// file holds.
public final class RecordingOutput: ProgramOutput {
    public enum State: Sendable, Equatable {
        case recording
        case failed(reason: String)
    }

    public let path: String
    public let maxBytes: Int64
    private let writer: SerialWriter
    private let file: Mutex<ContainerWriter?>
    private let progress = Mutex<(duration: Double, firstPTS: Int64?, state: State)>((0, nil, .recording))

    public init(path: String, format: ContainerWriter.VideoTrack, audio: ContainerWriter.AudioTrack, maxBytes: Int64 = .max) throws(CodecError) {
        self.path = path
        self.maxBytes = maxBytes
        writer = SerialWriter(label: "tally.recording", dropCounter: OutputMetrics.droppedRecording)
        file = Mutex(try ContainerWriter(format: .fragmentedMP4, path: path, video: format, audio: audio))
    }

    public func offer(_ packet: ProgramPacket) {
        writer.submit(packet) { [self] packet in
            guard state == .recording else { return }
            do {
                try file.withLock { file throws(CodecError) in try file?.write(packet) }
            } catch {
                fail("the recording could not be written: \(error)")
                return
            }
            progress.withLock { progress in
                let first = progress.firstPTS ?? packet.pts
                progress.firstPTS = first
                progress.duration = max(progress.duration, Double(packet.pts - first) / 1_000_000)
            }
            if size > maxBytes { fail("the recording reached its size limit of \(maxBytes / 1_048_576) MB") }
        }
    }

    public var state: State { progress.withLock { $0.state } }

    /// Stops writing for good, keeping what is written; the first reason stands.
    public func fail(_ reason: String) {
        let first = progress.withLock { progress -> Bool in
            guard progress.state == .recording else { return false }
            progress.state = .failed(reason: reason)
            return true
        }
        if first { OutputMetrics.recordingFailures.increment() }
    }

    private var size: Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? nil) ?? 0
    }

    /// Seconds recorded so far, the file's size, and whether it is still recording.
    public var status: (duration: Double, size: Int64, state: State) {
        let (duration, state) = progress.withLock { ($0.duration, $0.state) }
        return (duration, size, state)
    }

    /// Writes what is queued and completes the file.
    public func finish() {
        writer.sync {
            do {
                try file.withLock { file throws(CodecError) in try file?.finish() }
            } catch {
                fail("the recording could not be completed: \(error)")
            }
        }
    }
}
