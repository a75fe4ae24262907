import MediaCodecs
import Synchronization

/// What the compositor draws for one stage tile (a participant, an encoder's stream): a
/// picture, and the audio not yet mixed.
/// Decoders write from their own threads; the mix loop reads on its tick.
///
/// Picture and sound are lined up by capture time when the feed knows it (RTCP sender
/// reports give both tracks one publisher clock): each tick shows the newest picture
/// captured no later than the sound it mixes. Sound waits in its buffer as long as pictures
/// arrive later than sound, so a picture is there when its sound plays. Without capture
/// times the latest picture shows, and sound plays after 60 ms of buffering.
public final class CompositorInput: Sendable {
    private let state: Mutex<State>
    static let sampleRate = 48_000.0
    /// Sound buffered before playback starts, against network jitter.
    static let minimumDelay = 0.06
    /// The most sound is held back to wait for late pictures.
    static let maximumDelay = 0.5
    /// Pictures kept waiting for their sound; enough for `maximumDelay` at 20 fps, not more,
    /// since each is a whole decoded frame.
    static let maxQueuedFrames = 10

    private struct State {
        var name: String
        /// Decoded pictures not yet shown, oldest first, with their capture times.
        var pending: [(frame: VideoFrame, capture: Double)] = []
        var shown: VideoFrame?
        var shownVersion = 0
        var audio: [Float] = []
        var audioStarted = false
        /// The capture time of `audio[0]`, when known.
        var audioHead: Double?
        /// How much later than sound a picture of the same instant arrives, smoothed (s).
        var videoLag = 0.0
        /// The capture time just past the newest sound delivered.
        var audioEdge: Double?

        var bufferedSeconds: Double { Double(audio.count / 2) / CompositorInput.sampleRate }

        /// Sound held back: enough for jitter, and for pictures arriving later than sound.
        var targetDelay: Double {
            min(CompositorInput.maximumDelay, max(CompositorInput.minimumDelay, videoLag + 0.04))
        }
    }

    public init(name: String) {
        state = Mutex(State(name: name))
    }

    public var name: String {
        get { state.withLock { $0.name } }
        set { state.withLock { $0.name = newValue } }
    }

    /// A decoded picture; `capture` in seconds on the clock the sound's capture times use.
    public func deliver(_ frame: VideoFrame, capture: Double? = nil) {
        state.withLock { state in
            guard let capture else {
                state.pending.removeAll()
                state.shown = frame
                state.shownVersion += 1
                return
            }
            // A lag of seconds is no network: a clock that started again (a new encoder).
            if let edge = state.audioEdge, abs(edge - capture) < 2 {
                let lag = edge - capture
                // Quick to follow pictures getting later, slow to trust them getting earlier.
                state.videoLag += (lag - state.videoLag) * (lag > state.videoLag ? 0.2 : 0.02)
            }
            state.pending.append((frame, capture))
            if state.pending.count > Self.maxQueuedFrames { state.pending.removeFirst(state.pending.count - Self.maxQueuedFrames) }
        }
    }

    /// Interleaved samples waiting to be mixed.
    var bufferedAudioSamples: Int { state.withLock { $0.audio.count } }

    /// Interleaved stereo at 48 kHz; `capture`: when its first sample was captured.
    public func deliver(audio samples: [Float], capture: Double? = nil) {
        state.withLock { state in
            if let capture {
                // The buffer's head, as this packet places it: later packets correct drift and gaps.
                state.audioHead = capture - state.bufferedSeconds
                state.audioEdge = capture + Double(samples.count / 2) / Self.sampleRate
            } else {
                state.audioHead = nil
                state.audioEdge = nil
            }
            state.audio += samples
            let ceiling = Int((state.targetDelay + 0.3) * Self.sampleRate) * 2
            if state.audio.count > ceiling { dropAudio(&state, count: state.audio.count - Int(state.targetDelay * Self.sampleRate) * 2) }
        }
    }

    private func dropAudio(_ state: inout State, count: Int) {
        let dropped = min(count, state.audio.count) & ~1
        state.audio.removeFirst(dropped)
        state.audioHead = state.audioHead.map { $0 + Double(dropped / 2) / Self.sampleRate }
    }

    /// The picture to draw at this tick: the newest captured no later than the sound about
    /// to be mixed, or the latest when there is no capture time to go by.
    var latestFrame: (frame: VideoFrame, version: Int)? {
        state.withLock { state in
            let head = state.audioStarted ? state.audioHead : nil
            if let head {
                // Half a frame's grace: a picture and the sound of its instant go out together.
                if let index = state.pending.lastIndex(where: { $0.capture <= head + 0.017 }) {
                    state.shown = state.pending[index].frame
                    state.shownVersion += 1
                    state.pending.removeFirst(index + 1)
                }
            } else if let newest = state.pending.last {
                state.shown = newest.frame
                state.shownVersion += 1
                state.pending.removeAll()
            }
            return state.shown.map { ($0, state.shownVersion) }
        }
    }

    /// Adds `count` interleaved samples of this input into `mix`. Playback starts once the
    /// target delay is buffered; an empty buffer plays silence and starts over.
    func mix(into mix: inout [Float], count: Int) {
        state.withLock { state in
            if !state.audioStarted {
                guard state.bufferedSeconds >= state.targetDelay else { return }
                state.audioStarted = true
            } else if state.bufferedSeconds < state.targetDelay - 0.05 {
                // Pictures have fallen further behind than the buffer covers: a tick of
                // silence lets the buffer grow to the new delay.
                return
            }
            let available = min(count, state.audio.count)
            if available == 0 {
                state.audioStarted = false
                return
            }
            state.audio.withUnsafeBufferPointer { source in
                for index in 0..<available { mix[index] += source[index] }
            }
            dropAudio(&state, count: available)
        }
    }
}
