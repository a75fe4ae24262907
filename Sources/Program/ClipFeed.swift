import Compositor
import Foundation
import Logging
import MediaCodecs
import Synchronization

/// A video from the host's library as a stage tile: which file, read with which demuxer,
/// and whether it plays again from the start at its end.
public struct ClipSource: Hashable, Sendable {
    public var id: UUID
    public var path: String
    public var container: MediaFileDecoder.Container
    public var loop: Bool

    public init(id: UUID, path: String, container: MediaFileDecoder.Container, loop: Bool) {
        self.id = id
        self.path = path
        self.container = container
        self.loop = loop
    }
}

/// A clip on stage: its file decoded on a thread of its own and handed to a compositor input
/// at the pace it was made, pictures and sound on the file's one clock, as a live feed would
/// be. It starts from the beginning each time the clip goes on stage; at its end it starts
/// again (looped) or holds its last picture in silence.
final class ClipFeed: Sendable {
    let input: CompositorInput
    let source: ClipSource
    private let running = Atomic(true)
    private let logger: Logger

    /// Decoded output read ahead of its time, so a file that interleaves its tracks loosely
    /// still delivers each in order; bounded in pictures, since each is a whole frame.
    private static let readAheadSeconds = 1.0
    private static let readAheadPictures = 12

    init(input: CompositorInput, source: ClipSource, logger: Logger) {
        self.input = input
        self.source = source
        self.logger = logger
    }

    func start() {
        let thread = Thread { [self] in play() }
        thread.name = "tally.feed.clip"
        thread.start()
    }

    func stop() {
        running.store(false, ordering: .relaxed)
    }

    private func play() {
        do {
            let decoder = try MediaFileDecoder(path: source.path, container: source.container)
            let clock = ContinuousClock()
            let origin = clock.now
            var offset = 0.0
            var ahead: [(output: MediaFileDecoder.Output, at: Double)] = []
            var ended = false
            var lastTime = 0.0
            while running.load(ordering: .relaxed) {
                while !ended && Self.wantsMore(ahead) {
                    if let output = try decoder.next() {
                        let at = offset + Self.seconds(of: output)
                        lastTime = max(lastTime, at)
                        let index = ahead.firstIndex { $0.at > at } ?? ahead.endIndex
                        ahead.insert((output, at), at: index)
                    } else if source.loop {
                        // The next pass starts where this one ended, on the same running clock.
                        offset = max(offset + decoder.info.durationSeconds, lastTime + 0.02)
                        try decoder.rewind()
                    } else {
                        ended = true
                    }
                }
                guard !ahead.isEmpty else { break }
                let (output, at) = ahead.removeFirst()
                guard sleep(until: origin + .seconds(at), clock: clock) else { break }
                switch output {
                case .picture(let picture, _): input.deliver(picture, capture: at)
                case .sound(let samples, _): input.deliver(audio: samples, capture: at)
                }
            }
        } catch {
            logger.error("clip not played", metadata: ["clip": "\(source.id)", "error": "\(error)"])
        }
    }

    private static func wantsMore(_ ahead: [(output: MediaFileDecoder.Output, at: Double)]) -> Bool {
        guard let first = ahead.first?.at, let last = ahead.last?.at else { return true }
        let pictures = ahead.reduce(0) { count, item in
            if case .picture = item.output { count + 1 } else { count }
        }
        return last - first < readAheadSeconds && pictures < readAheadPictures
    }

    private static func seconds(of output: MediaFileDecoder.Output) -> Double {
        switch output {
        case .picture(_, let seconds), .sound(_, let seconds): seconds
        }
    }

    /// Sleeps in short steps so a clip taken off stage stops promptly; false once stopped.
    private func sleep(until deadline: ContinuousClock.Instant, clock: ContinuousClock) -> Bool {
        while running.load(ordering: .relaxed) {
            let left = deadline - clock.now
            guard left > .zero else { return true }
            Thread.sleep(forTimeInterval: min(0.05, Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18))
        }
        return false
    }
}
