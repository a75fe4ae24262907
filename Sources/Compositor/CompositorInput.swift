import MediaCodecs
import Synchronization

/// What the compositor draws for one participant: the latest picture and the audio not yet
/// mixed. Decoders write from their own threads; the mix loop reads on its tick.
public final class CompositorInput: Sendable {
    public let participantID: String
    private let state: Mutex<State>
    /// Audio older than this is dropped when a source runs fast, so delay cannot build up.
    static let maxBufferedSamples = 48_000 * 2 / 5 * 2

    private struct State {
        var name: String
        var frame: VideoFrame?
        var frameVersion = 0
        var audio: [Float] = []
        var audioStarted = false
    }

    public init(participantID: String, name: String) {
        self.participantID = participantID
        state = Mutex(State(name: name))
    }

    public var name: String {
        get { state.withLock { $0.name } }
        set { state.withLock { $0.name = newValue } }
    }

    public func deliver(_ frame: VideoFrame) {
        state.withLock {
            $0.frame = frame
            $0.frameVersion += 1
        }
    }

    /// Interleaved stereo at 48 kHz.
    public func deliver(audio samples: [Float]) {
        state.withLock { state in
            state.audio += samples
            if state.audio.count > Self.maxBufferedSamples { state.audio.removeFirst(state.audio.count - Self.maxBufferedSamples / 2) }
        }
    }

    var latestFrame: (frame: VideoFrame, version: Int)? {
        state.withLock { state in state.frame.map { ($0, state.frameVersion) } }
    }

    /// Adds `count` interleaved samples of this input into `mix`. Playback starts once 60 ms
    /// are buffered, which absorbs network jitter; an empty buffer plays silence.
    func mix(into mix: inout [Float], count: Int) {
        state.withLock { state in
            if !state.audioStarted {
                guard state.audio.count >= 48_000 * 2 * 60 / 1000 else { return }
                state.audioStarted = true
            }
            let available = min(count, state.audio.count)
            if available == 0 {
                state.audioStarted = false
                return
            }
            state.audio.withUnsafeBufferPointer { source in
                for index in 0..<available { mix[index] += source[index] }
            }
            state.audio.removeFirst(available)
        }
    }
}
