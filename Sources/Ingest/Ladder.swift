import Dispatch
import FLV
import Foundation
import Logging
import MediaCodecs
import Metrics
import Outputs
import Synchronization

/// One rung of an ABR ladder: the renditions of the Leams seed's bitrate table.
public struct Rendition: Sendable, Equatable {
    public var name: String
    public var height: Int
    public var framesPerSecond: Int
    public var videoBitrateKbps: Int
    public static let audioBitrateKbps = 128
    /// The folder of the untouched source's HLS when a stream has a ladder.
    public static let sourceName = "source"

    public static let all: [Rendition] = [
        Rendition(name: "1080p60", height: 1080, framesPerSecond: 60, videoBitrateKbps: 6000),
        Rendition(name: "1080p30", height: 1080, framesPerSecond: 30, videoBitrateKbps: 4500),
        Rendition(name: "720p60", height: 720, framesPerSecond: 60, videoBitrateKbps: 4500),
        Rendition(name: "720p30", height: 720, framesPerSecond: 30, videoBitrateKbps: 3000),
        Rendition(name: "480p30", height: 480, framesPerSecond: 30, videoBitrateKbps: 1500),
        Rendition(name: "360p30", height: 360, framesPerSecond: 30, videoBitrateKbps: 1000),
    ]

    public static func named(_ name: String) -> Rendition? { all.first { $0.name == name } }

    /// The width that keeps the source's shape at this height, even.
    func width(forSource width: Int, height sourceHeight: Int) -> Int {
        guard width > 0, sourceHeight > 0 else { return (self.height * 16 / 9 + 1) & ~1 }
        return max(2, (self.height * width + sourceHeight) / (2 * sourceHeight) * 2)
    }
}

/// Transcodes what an ingest stream's viewers see (publisher and slate alike, already on the
/// stream's one clock) into the configured renditions, each its own HLS, with a master
/// playlist over them and the untouched source. Decoding and encoding run on a queue of
/// their own; a source that outruns them loses frames, counted, never the publisher's pace.
final class LadderTranscoder: Sendable {
    let directory: URL
    let renditions: [Rendition]
    private let queue = DispatchQueue(label: "tally.ladder")
    private let state: Mutex<State>
    private let backlog = Atomic<Int>(0)
    /// Set when video was dropped: decoding must start again from a keyframe.
    private let resync = Atomic<Bool>(false)
    private let logger: Logger
    private let dropped: Counter
    private let counters: HLSCounters
    static var sourceName: String { Rendition.sourceName }
    static let maxBacklog = 120

    private struct State: @unchecked Sendable {
        var decoder: (any VideoDecoder)?
        /// The source's picture track: what decoding restarts on, and the master's CODECS.
        var sourceVideo: ContainerWriter.VideoTrack?
        var waitingForKeyframe = true
        var audio: ContainerWriter.AudioTrack?
        var rungs: [Rung] = []
        var finished = false
        var sourceBitrate = 0
        var master = ""
    }

    private struct Rung {
        let rendition: Rendition
        var encoder: H264Encoder?
        var picture: VideoFrame?
        var scaler = FrameScaler()
        var hls: HLSOutput?
        var nextDue: Int64?
    }

    /// `counters`: the stream's, which its renditions' HLS shares; `dropped`: pictures skipped to catch up.
    init(directory: URL, renditions: [Rendition], logger: Logger, counters: HLSCounters, dropped: Counter) {
        self.directory = directory
        self.renditions = renditions
        self.logger = logger
        self.dropped = dropped
        self.counters = counters
        state = Mutex(State(rungs: renditions.map { Rung(rendition: $0) }))
        Self.running.add(1, ordering: .relaxed)
    }

    /// Where the passthrough HLS goes when there is a ladder.
    var sourceDirectory: URL { directory.appendingPathComponent(Self.sourceName) }

    /// New tracks from the source (a publisher or the slate): decoding restarts at the next keyframe.
    func changeTracks(video: ContainerWriter.VideoTrack, audio: ContainerWriter.AudioTrack?) {
        enqueue { state in
            if video.parameterSets != state.sourceVideo?.parameterSets {
                state.sourceVideo = video
                state.decoder = try? VideoDecoders.make(video.codec)
                state.waitingForKeyframe = true
            }
            if audio?.audioSpecificConfig != state.audio?.audioSpecificConfig {
                state.audio = audio
                for index in state.rungs.indices {
                    if let hls = state.rungs[index].hls, let encoder = state.rungs[index].encoder {
                        hls.changeTracks(video: Self.track(encoder), audio: audio)
                    }
                }
            }
        }
    }

    func offer(_ packet: ProgramPacket, sourceBitrate: Int) {
        // Video waits for its keyframe after a drop; audio is cheap and always goes through.
        guard backlog.load(ordering: .relaxed) < Self.maxBacklog || packet.kind == .audio else {
            dropped.increment()
            resync.store(true, ordering: .relaxed)
            return
        }
        enqueue { [self] state in
            state.sourceBitrate = max(state.sourceBitrate, sourceBitrate)
            if packet.kind == .audio {
                for rung in state.rungs { rung.hls?.offer(packet) }
                return
            }
            transcode(packet, &state)
        }
    }

    /// Ladders transcoding on this node now: each costs a decode and an encode per rung.
    static let running = Atomic<Int>(0)

    /// Ends every rung's playlist; work still queued is dropped, and nobody waits for it.
    func finish() {
        let (rungs, wasRunning) = state.withLock { state in
            defer { state.finished = true }
            return (state.rungs.compactMap(\.hls), !state.finished)
        }
        if wasRunning { Self.running.subtract(1, ordering: .relaxed) }
        queue.async {
            for hls in rungs { hls.finish() }
        }
    }

    private func enqueue(_ work: @escaping @Sendable (inout State) -> Void) {
        backlog.add(1, ordering: .relaxed)
        queue.async { [self] in
            state.withLock { state in
                if !state.finished { work(&state) }
            }
            backlog.subtract(1, ordering: .relaxed)
        }
    }

    private func transcode(_ packet: ProgramPacket, _ state: inout State) {
        if resync.exchange(false, ordering: .relaxed) { state.waitingForKeyframe = true }
        if state.waitingForKeyframe {
            guard packet.isKeyframe else { return }
            state.waitingForKeyframe = false
        }
        let picture: VideoFrame?
        do {
            picture = try state.decoder?.decode(EncodedFrame(data: packet.data, rtpTimestamp: 0, isKeyframe: packet.isKeyframe))
        } catch {
            state.waitingForKeyframe = true
            return
        }
        guard let picture else { return }
        for index in state.rungs.indices {
            encode(picture, pts: packet.pts, rung: &state.rungs[index], audio: state.audio)
        }
        if state.rungs.contains(where: { $0.hls != nil }) { writeMaster(&state) }
    }

    private func encode(_ source: VideoFrame, pts: Int64, rung: inout Rung, audio: ContainerWriter.AudioTrack?) {
        let rendition = rung.rendition
        // A 30 fps rung of a 60 fps source takes every other picture, by time.
        if let due = rung.nextDue, pts < due - 2_000 { return }
        let interval = 1_000_000 / Int64(rendition.framesPerSecond)
        rung.nextDue = max(rung.nextDue.map { $0 + interval } ?? pts, pts - interval)
        if rung.encoder == nil {
            let width = rendition.width(forSource: source.width, height: source.height)
            do {
                let encoder = try H264Encoder(.init(width: width, height: rendition.height, framesPerSecond: rendition.framesPerSecond,
                                                    bitrateKbps: rendition.videoBitrateKbps, keyframeIntervalSeconds: 2, preset: "veryfast", threads: 1))
                rung.encoder = encoder
                rung.picture = VideoFrame(width: width, height: rendition.height, fill: (16, 128, 128))
                rung.hls = try HLSOutput(directory: directory.appendingPathComponent(rendition.name), video: Self.track(encoder), audio: audio, counters: counters)
            } catch {
                logger.error("ladder: cannot start \(rendition.name): \(error)")
                return
            }
        }
        guard let encoder = rung.encoder, var picture = rung.picture else { return }
        rung.scaler.draw(source, crop: PixelRect(x: 0, y: 0, width: source.width, height: source.height), into: &picture,
                         rect: PixelRect(x: 0, y: 0, width: picture.width, height: picture.height))
        rung.picture = picture
        if let packet = try? encoder.encode(&picture, pts: pts) { rung.hls?.offer(packet) }
    }

    static func track(_ encoder: H264Encoder) -> ContainerWriter.VideoTrack {
        ContainerWriter.VideoTrack(width: encoder.settings.width, height: encoder.settings.height,
                                   framesPerSecond: encoder.settings.framesPerSecond, parameterSets: encoder.parameterSets)
    }

    /// The CODECS attribute of a variant: its picture's as its SPS says, and AAC-LC.
    static func codecs(_ video: ContainerWriter.VideoTrack?) -> String {
        let configuration = video?.parameterSets ?? []
        let picture: String? = switch video?.codec {
        case .hevc?: AnnexB.nalUnits(configuration).first { HEVC.type($0) == HEVC.sps }.flatMap(CodecString.hevc)
        case .av1?: (try? AV1CodecConfiguration.parse(configuration[...])).map(CodecString.av1)
        case .vp9?: (try? VP9CodecConfiguration.parse(configuration[...])).map(CodecString.vp9)
        default: AnnexB.nalUnits(configuration).first { AnnexB.type($0) == 7 }.flatMap(CodecString.avc)
        }
        return "\(picture ?? "avc1.640028"),mp4a.40.2"
    }

    /// `index.m3u8` over the source and every rung that has started, best first.
    private func writeMaster(_ state: inout State) {
        var text = "#EXTM3U\n#EXT-X-VERSION:3\n"
        let audioBits = Rendition.audioBitrateKbps * 1000
        // The source's figure is what the publisher sent in its busiest second so far, rounded
        // so the playlist does not change with every second.
        let sourceBandwidth = max(1_000_000, (state.sourceBitrate + 499_999) / 500_000 * 500_000)
        text += "#EXT-X-STREAM-INF:BANDWIDTH=\(sourceBandwidth),CODECS=\"\(Self.codecs(state.sourceVideo))\"\n\(Self.sourceName)/\(HLSOutput.playlistName)\n"
        for rung in state.rungs {
            guard let encoder = rung.encoder else { continue }
            let bandwidth = rung.rendition.videoBitrateKbps * 1000 + audioBits
            text += "#EXT-X-STREAM-INF:BANDWIDTH=\(bandwidth),RESOLUTION=\(encoder.settings.width)x\(encoder.settings.height),"
                + "FRAME-RATE=\(rung.rendition.framesPerSecond),CODECS=\"\(Self.codecs(Self.track(encoder)))\"\n\(rung.rendition.name)/\(HLSOutput.playlistName)\n"
        }
        guard text != state.master else { return }
        state.master = text
        let path = directory.appendingPathComponent(HLSOutput.playlistName)
        let temporary = directory.appendingPathComponent(".master.tmp")
        try? text.write(to: temporary, atomically: false, encoding: .utf8)
        _ = rename(temporary.path, path.path)
    }
}
