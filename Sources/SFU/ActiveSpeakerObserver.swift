/// Who is speaking, from the audio-level header extension (RFC 6464): the loudest audio
/// producer over the last second, with hysteresis so the speaker does not flicker.
///
/// Levels are -dBov: 0 is the loudest, 127 silence. Not thread-safe; time is passed in.
public struct ActiveSpeakerObserver<Producer: Hashable & Sendable>: Sendable {
    /// Average loudness (127 - level) above which a producer counts as speaking.
    public var speakingThreshold: Double = 40
    /// A challenger must be this much louder than the current speaker to take over.
    public var switchMargin: Double = 6
    public var window: Duration = .seconds(1)
    public private(set) var speaker: Producer?

    private var samples: [Producer: [(at: Duration, loudness: Double)]] = [:]

    public init() {}

    public mutating func record(producer: Producer, level: UInt8, at now: Duration) {
        samples[producer, default: []].append((now, Double(127 - min(level, 127))))
    }

    public mutating func remove(producer: Producer) {
        samples[producer] = nil
        if speaker == producer { speaker = nil }
    }

    /// Re-evaluates; returns the new speaker (nil: silence) when it changed.
    public mutating func evaluate(now: Duration) -> Producer?? {
        var averages: [Producer: Double] = [:]
        for (producer, list) in samples {
            let recent = list.filter { now - $0.at < window }
            samples[producer] = recent
            guard !recent.isEmpty else { continue }
            averages[producer] = recent.map(\.loudness).reduce(0, +) / Double(recent.count)
        }
        let current = speaker.flatMap { averages[$0] } ?? 0
        let loudest = averages.filter { $0.value >= speakingThreshold }.max { $0.value < $1.value }
        let next: Producer?
        if let loudest, loudest.key != speaker, current < speakingThreshold || loudest.value >= current + switchMargin {
            next = loudest.key
        } else if current < speakingThreshold && loudest == nil {
            next = nil
        } else {
            next = speaker
        }
        guard next != speaker else { return .none }
        speaker = next
        return .some(next)
    }
}
