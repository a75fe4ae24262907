import Compositor
import Dispatch
import Ingest
import MediaCodecs
import Synchronization

/// An encoder's feed on stage: the ingest stream's H.264 and AAC decoded into a compositor
/// input, on a queue of its own so the publisher's connection only hands packets over.
final class IngestFeed: Sendable {
    let input: CompositorInput
    let streamID: String
    private let queue = DispatchQueue(label: "tally.feed.ingest")
    private let decoders = Mutex(Decoders())
    private let watch = Mutex<(stream: IngestStream, token: UInt64)?>(nil)

    private struct Decoders: @unchecked Sendable {
        var video: (any VideoDecoder)?
        var audio: AACDecoder?
        var parameterSets: [UInt8] = []
        var audioSpecificConfig: [UInt8] = []
        var waitingForKeyframe = true
    }

    init(input: CompositorInput, streamID: String) {
        self.input = input
        self.streamID = streamID
    }

    func start(_ hub: IngestHub) {
        let handle = hub.watch(streamID) { [self] event in queue.async { self.process(event) } }
        watch.withLock { $0 = handle }
    }

    func stop() {
        guard let (stream, token) = watch.withLock({ $0 }) else { return }
        stream.unwatch(token)
    }

    private func process(_ event: IngestFeedEvent) {
        switch event {
        case .tracks(let video, let audio):
            decoders.withLock { decoders in
                let sets = video?.parameterSets ?? []
                if sets != decoders.parameterSets {
                    decoders.parameterSets = sets
                    decoders.video = sets.isEmpty ? nil : try? VideoDecoders.make(video?.codec ?? .h264)
                    decoders.waitingForKeyframe = true
                }
                let config = audio?.audioSpecificConfig ?? []
                if config != decoders.audioSpecificConfig {
                    decoders.audioSpecificConfig = config
                    decoders.audio = config.isEmpty ? nil : try? AACDecoder(audioSpecificConfig: config)
                }
            }
        case .packet(let packet) where packet.kind == .video:
            let picture = decoders.withLock { decoders -> VideoFrame? in
                if decoders.waitingForKeyframe {
                    guard packet.isKeyframe else { return nil }
                    decoders.waitingForKeyframe = false
                }
                do {
                    return try decoders.video?.decode(EncodedFrame(data: packet.data, rtpTimestamp: 0, isKeyframe: packet.isKeyframe))
                } catch {
                    FeedMetrics.decodeErrors.increment()
                    decoders.waitingForKeyframe = true
                    return nil
                }
            }
            if let picture {
                FeedMetrics.decodedFrames.increment()
                // The encoder's one clock times picture and sound alike.
                input.deliver(picture, capture: Double(packet.pts) / 1_000_000)
            }
        case .packet(let packet):
            let samples = decoders.withLock { try? $0.audio?.decode(packet.data) } ?? []
            if !samples.isEmpty { input.deliver(audio: samples, capture: Double(packet.pts) / 1_000_000) }
        }
    }
}
