import Dispatch
import Foundation
import Logging
import MediaCodecs
import Metrics
import NetworkPolicy
import NIOCore
import Outputs
import SFU
import Synchronization

/// Where an ingest stream is in its life, as the stream API reports it.
public enum IngestStatus: String, Sendable, Codable {
    /// Armed: waiting for a publisher (or for one to come back after the slate ran out).
    case starting
    /// A publisher is sending, or has just dropped and the slate is holding its place.
    case running
    /// Stopped through the API: publishes are refused until it is started again.
    case stopped
    /// The publisher sent something the stream cannot carry.
    case error
}

/// The transport an encoder used.
public enum IngestProtocol: String, Sendable, Codable {
    case rtmp
    case srt
    case whip
}

public struct IngestPublisherInfo: Sendable, Codable, Equatable {
    public var transport: IngestProtocol
    public var remoteAddress: String
    public var connectedAt: Date
}

/// What a stream's watchers (a studio stage showing it) hear: the publisher's tracks when
/// they change, then its packets as they come, on the publisher's own clock.
public enum IngestFeedEvent: Sendable {
    case tracks(video: ContainerWriter.VideoTrack?, audio: ContainerWriter.AudioTrack?)
    case packet(ProgramPacket)
}

/// A stream's state for the API and /api/debug.
public struct IngestStreamSnapshot: Sendable {
    public var streamID: String
    public var status: IngestStatus
    /// A publisher is connected and its media is reaching viewers.
    public var isLive: Bool
    public var slateShowing: Bool
    /// When this run's first publisher connected.
    public var startTime: Date?
    public var publisher: IngestPublisherInfo?
    public var lastError: String?
    public var bitrate: Int
    public var framesPerSecond: Double
    public var droppedFrames: Int
    public var hlsViewers: Int
    public var uptimeSeconds: Double
    public var video: ContainerWriter.VideoTrack?
    public var audio: ContainerWriter.AudioTrack?
    public var publishers: Int
    /// The furthest timestamp written to HLS, in microseconds on the stream's clock.
    public var timelineEnd: Int64
    /// Each relay's state, by destination ID; a relay not listed is idle.
    public var relays: [String: DestinationState]
}

/// One ingest stream: its publisher (at most one at a time), its HLS passthrough and relays
/// to RTMP destinations, the slate that stands in while the publisher is away, and its
/// figures. Its life is an `IngestMachine`, run under the stream's lock: the outputs change
/// there, in order with the packets, and what the machine asks beyond them (closing a
/// connection, stopping relays, reporting the status) runs after the lock is released.
/// Publisher calls come from the publisher's event loop and never block; slate work runs on
/// the stream's own queue.
public final class IngestStream: Sendable {
    public let id: String
    let directory: URL
    let slateTimeout: Duration
    private let queue: DispatchQueue
    private let state: Mutex<State>
    private let logger: Logger
    private let onStatus: @Sendable (IngestStreamSnapshot) -> Void
    private let metrics: Metrics
    private let settings = Mutex(IngestSettings())
    private let group: any EventLoopGroup
    /// Where relays may connect.
    private let outbound: OutboundPolicy
    /// Ladders this node transcodes at once, all streams together.
    private let maxLadders: Int

    /// Whether HLS plays without a signed URL (the stream's owner chooses).
    public var publicHLS: Bool { settings.withLock { $0.publicHLS } }

    /// The renditions viewers get besides the source.
    public var ladder: [Rendition] { settings.withLock { $0.ladder } }

    /// The owner's settings. Relays added or removed take effect at once; a new ladder
    /// applies from the next time HLS starts.
    func configure(_ new: IngestSettings) {
        let old = settings.withLock { settings in
            defer { settings = new }
            return settings
        }
        guard old.relays != new.relays else { return }
        let stopped = state.withLock { state -> [DestinationPush] in
            var stopped: [DestinationPush] = []
            for (id, push) in state.relays where !new.relays.contains(where: { $0.id == id && $0.endpoint == push.endpoint }) {
                stopped += removeRelay(&state, id: id)
            }
            if state.hls != nil, let video = state.outputVideo {
                for relay in new.relays where state.relays[relay.id] == nil { startRelay(&state, relay, video: video, audio: state.outputAudio) }
            }
            return stopped
        }
        finish(Aftermath(stoppedRelays: stopped))
    }

    private struct State: @unchecked Sendable {
        var machine = IngestMachine()
        /// The connection of the publisher the machine holds the stream for.
        var publisher: (token: UInt64, info: IngestPublisherInfo, close: @Sendable (String) -> Void)?
        var hls: HLSOutput?
        var ladder: LadderTranscoder?
        var relays: [String: DestinationPush] = [:]
        var relayStates: [String: DestinationState] = [:]
        /// The tracks the outputs are writing now: the publisher's or the slate's.
        var outputVideo: ContainerWriter.VideoTrack?
        var outputAudio: ContainerWriter.AudioTrack?
        var timeline = IngestTimeline()
        var video: ContainerWriter.VideoTrack?
        var audio: ContainerWriter.AudioTrack?
        var slate: SlateRun?
        var lastError: String?
        var droppedFrames = 0
        var rate = RateWindow()
        var viewers: [String: ContinuousClock.Instant] = [:]
        var watchers: [UInt64: @Sendable (IngestFeedEvent) -> Void] = [:]
        var nextWatcher: UInt64 = 1
    }

    /// What the machine's actions leave to do once the lock is released.
    private struct Aftermath {
        var close: (connection: @Sendable (String) -> Void, reason: String)?
        var report = false
        var stoppedRelays: [DestinationPush] = []
    }

    private struct SlateRun {
        var timer: any DispatchSourceTimer
        var slate: Slate?
        var group: Int64 = 0
    }

    /// This stream's part of /metrics, which adds every stream up: stream ids stay off the
    /// unauthenticated endpoint, and each stream's own figures are in `GET /api/debug/{id}`.
    private struct Metrics: Sendable {
        static let bitrate = SummedGauge(label: "tally_ingest_bitrate_bps")
        static let viewers = SummedGauge(label: "tally_ingest_hls_viewers")
        static let publishing = SummedGauge(label: "tally_ingest_publishing_streams")

        let bitrate = Metrics.bitrate.share()
        let viewers = Metrics.viewers.share()
        let publishing = Metrics.publishing.share()
        let dropped = Counter(label: "tally_ingest_dropped_frames_total")
        let hls = HLSCounters(dropped: Counter(label: "tally_ingest_hls_dropped_packets_total"), segments: Counter(label: "tally_ingest_hls_segments_total"))
        let ladderDrops = Counter(label: "tally_ingest_ladder_dropped_frames_total")
    }

    init(id: String, directory: URL, slateTimeout: Duration, group: any EventLoopGroup, outbound: OutboundPolicy, maxLadders: Int,
         logger: Logger, onStatus: @escaping @Sendable (IngestStreamSnapshot) -> Void) {
        self.id = id
        self.maxLadders = maxLadders
        self.directory = directory
        self.slateTimeout = slateTimeout
        self.group = group
        self.outbound = outbound
        self.logger = logger
        self.onStatus = onStatus
        queue = DispatchQueue(label: "tally.ingest.\(id)")
        state = Mutex(State())
        metrics = Metrics()
    }

    // MARK: Publisher side

    /// Makes `info` the stream's publisher, replacing (and closing) any other at once.
    func attach(_ info: IngestPublisherInfo, close: @escaping @Sendable (String) -> Void) -> UInt64? {
        let (token, aftermath) = state.withLock { state -> (UInt64?, Aftermath) in
            guard let (token, actions) = state.machine.attach(at: Date()) else { return (nil, Aftermath()) }
            let aftermath = apply(actions, to: &state)
            state.publisher = (token, info, close)
            state.lastError = nil
            state.video = nil
            state.audio = nil
            return (token, aftermath)
        }
        if aftermath.close != nil {
            logger.notice("ingest: a new publisher replaces the old one", metadata: ["stream": "\(id)", "from": "\(info.remoteAddress)"])
        }
        finish(aftermath)
        return token
    }

    func setTracks(token: UInt64, video: ContainerWriter.VideoTrack?, audio: ContainerWriter.AudioTrack?) {
        state.withLock { state in
            guard state.publisher?.token == token else { return }
            // Only new codec configuration reopens outputs; a size from later metadata does not.
            let changed = video?.parameterSets != state.video?.parameterSets || audio?.audioSpecificConfig != state.audio?.audioSpecificConfig
            state.video = video
            state.audio = audio
            guard changed, state.machine.tracksDidChange(token: token) else { return }
            for watcher in state.watchers.values { watcher(.tracks(video: video, audio: audio)) }
        }
    }

    /// Calls `handler` with the publisher's tracks and packets (not the slate's) until
    /// `unwatch`. It runs under the stream's lock: it must only hand the event on.
    public func watch(_ handler: @escaping @Sendable (IngestFeedEvent) -> Void) -> UInt64 {
        state.withLock { state in
            let token = state.nextWatcher
            state.nextWatcher += 1
            state.watchers[token] = handler
            if state.publisher != nil, state.video != nil || state.audio != nil { handler(.tracks(video: state.video, audio: state.audio)) }
            return token
        }
    }

    public func unwatch(_ token: UInt64) {
        _ = state.withLock { $0.watchers.removeValue(forKey: token) }
    }

    func send(token: UInt64, _ packet: ProgramPacket) {
        state.withLock { state in
            guard state.publisher?.token == token else { return }
            let rolled = state.rate.add(bytes: packet.data.count, frame: packet.kind == .video, at: .now)
            if rolled { publishFigures(state) }
            for watcher in state.watchers.values { watcher(.packet(packet)) }
            let canStart = packet.kind == .video && packet.isKeyframe && state.video != nil
            switch state.machine.packet(token: token, canStart: canStart) {
            case .stale:
                return
            case .drop:
                if packet.kind == .video {
                    state.droppedFrames += 1
                    metrics.dropped.increment()
                }
                return
            case .emit(let actions):
                // Output actions only: a packet never closes a connection or changes the status.
                _ = apply(actions, to: &state)
            }
            emit(&state, state.timeline.map(packet))
        }
    }

    /// Pictures the publisher's feed lost before they became packets (a WHIP picture whose
    /// packets never all arrived): counted with the stream's other drops.
    func noteDropped(token: UInt64, frames: Int) {
        guard frames > 0 else { return }
        state.withLock { state in
            guard state.publisher?.token == token else { return }
            state.droppedFrames += frames
            metrics.dropped.increment(by: frames)
        }
    }

    /// The publisher sent what the stream cannot carry: the stream goes to `error`.
    func fail(token: UInt64, _ reason: String) {
        let aftermath = state.withLock { state -> Aftermath? in
            guard state.publisher?.token == token, let actions = state.machine.fail(token: token, reason: reason) else { return nil }
            state.lastError = reason
            return apply(actions, to: &state)
        }
        guard let aftermath else { return }
        logger.warning("ingest: stream failed", metadata: ["stream": "\(id)", "reason": "\(reason)"])
        finish(aftermath)
    }

    /// The publisher is gone: the slate holds the stream until it returns or time runs out.
    func detach(token: UInt64, reason: String) {
        let aftermath = state.withLock { state -> Aftermath? in
            guard state.publisher?.token == token, let actions = state.machine.detach(token: token, at: .now) else { return nil }
            state.publisher = nil
            state.rate = RateWindow()
            publishFigures(state)
            return apply(actions, to: &state)
        }
        guard let aftermath else { return }
        logger.info("ingest: publisher left", metadata: ["stream": "\(id)", "reason": "\(reason)"])
        finish(aftermath)
    }

    // MARK: API side

    /// Stopped through the API: the publisher is closed and HLS ends.
    func stop() {
        finish(state.withLock { state in
            state.rate = RateWindow()
            let aftermath = apply(state.machine.stop(), to: &state)
            publishFigures(state)
            return aftermath
        })
    }

    /// The server is going down: the publisher is closed and HLS ends, silently.
    func shutdown() {
        finish(state.withLock { state in
            state.rate = RateWindow()
            let aftermath = apply(state.machine.shutdown(), to: &state)
            publishFigures(state)
            return aftermath
        })
    }

    /// Started (again) through the API: publishes are welcome.
    func arm() {
        finish(state.withLock { state in
            let actions = state.machine.arm()
            if !actions.isEmpty { state.lastError = nil }
            return apply(actions, to: &state)
        })
    }

    /// A viewer fetched the playlist; viewers are the addresses seen in the last 30 s.
    public func noteViewer(_ address: String) {
        state.withLock { state in
            let now = ContinuousClock.now
            state.viewers[address] = now
            state.viewers = state.viewers.filter { now - $0.value < .seconds(30) }
            metrics.viewers.record(Double(state.viewers.count))
        }
    }

    public var snapshot: IngestStreamSnapshot {
        state.withLock { snapshot($0) }
    }

    private func snapshot(_ state: State) -> IngestStreamSnapshot {
        let now = ContinuousClock.now
        let uptime = state.machine.startTime.map { Date().timeIntervalSince($0) } ?? 0
        return IngestStreamSnapshot(
            streamID: id, status: state.machine.status, isLive: isPlayable(state), slateShowing: state.slate != nil,
            startTime: state.machine.startTime, publisher: state.publisher?.info, lastError: state.lastError,
            bitrate: state.rate.bitsPerSecond, framesPerSecond: state.rate.framesPerSecond, droppedFrames: state.droppedFrames,
            hlsViewers: state.viewers.values.filter { now - $0 < .seconds(30) }.count, uptimeSeconds: uptime,
            video: state.video, audio: state.audio, publishers: state.machine.publishers, timelineEnd: state.timeline.end, relays: state.relayStates)
    }

    /// Live means a player can start: an encoder publishes and the playlist it is told to
    /// fetch exists (the first segment takes a target duration to close).
    private func isPlayable(_ state: State) -> Bool {
        guard case .publishing = state.machine.phase, state.hls != nil else { return false }
        // With a ladder, the master playlist names the source's, which comes later.
        return [directory, state.ladder?.sourceDirectory].compactMap { $0 }.allSatisfy {
            FileManager.default.fileExists(atPath: $0.appendingPathComponent(HLSOutput.playlistName).path)
        }
    }

    private func publishFigures(_ state: State) {
        metrics.bitrate.record(Double(state.rate.bitsPerSecond))
        metrics.publishing.record(state.publisher == nil ? 0 : 1)
    }

    // MARK: Running the machine's actions

    /// Applies what stays under the lock (the outputs, the slate's timer, the timeline) and
    /// returns the rest.
    private func apply(_ actions: [IngestMachine.Action], to state: inout State) -> Aftermath {
        var aftermath = Aftermath()
        for action in actions {
            switch action {
            case .closePublisher(let reason):
                if let publisher = state.publisher { aftermath.close = (publisher.close, reason) }
                state.publisher = nil
            case .startSlate:
                startSlate(&state)
            case .stopSlate:
                stopSlate(&state)
            case .beginSource:
                state.timeline.beginSource()
            case .openOutputs:
                guard let video = state.video else { continue }
                do {
                    try startHLS(&state, video: video)
                } catch {
                    state.machine.outputsFailed()
                    state.lastError = "cannot write HLS into \(directory.path): \(error)"
                    logger.error("ingest: cannot write HLS", metadata: ["stream": "\(id)", "directory": "\(directory.path)", "error": "\(error)"])
                }
            case .switchTracks:
                if let video = state.video { switchTracks(&state, video: video, audio: state.audio) }
            case .closeOutputs:
                aftermath.stoppedRelays += endHLS(&state)
            case .report:
                aftermath.report = true
            }
        }
        return aftermath
    }

    /// Runs what the lock left: closes a connection, stops relays, reports the status.
    private func finish(_ aftermath: Aftermath) {
        if let (connection, reason) = aftermath.close { connection(reason) }
        if !aftermath.stoppedRelays.isEmpty {
            Task { [relays = aftermath.stoppedRelays] in
                for push in relays { await push.stop() }
            }
        }
        if aftermath.report { onStatus(snapshot) }
    }

    // MARK: Slate

    private func startSlate(_ state: inout State) {
        guard state.slate == nil else { return }
        // The slate takes the publisher's size, so players need not resize for it.
        let width = state.video.map(\.width).flatMap { (2...3840).contains($0) ? $0 & ~1 : nil } ?? 1280
        let height = state.video.map(\.height).flatMap { (2...2160).contains($0) ? $0 & ~1 : nil } ?? 720
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now(), repeating: .nanoseconds(Int(Slate.groupDuration * 1000)))
        timer.setEventHandler { [weak self] in self?.slateTick(width: width, height: height) }
        state.slate = SlateRun(timer: timer)
        timer.resume()
    }

    private func stopSlate(_ state: inout State) {
        state.slate?.timer.cancel()
        state.slate = nil
    }

    /// One slate group onto HLS, or the end of the stream once the publisher has been away too long.
    private func slateTick(width: Int, height: Int) {
        let cached = state.withLock { $0.slate?.slate }
        var built: Slate?
        if cached == nil {
            do {
                built = try Slate(width: width, height: height)
            } catch {
                logger.error("ingest: cannot make the slate: \(error)", metadata: ["stream": "\(id)"])
            }
        }
        let ended = state.withLock { state -> Aftermath? in
            guard var run = state.slate, let actions = state.machine.slateTick(at: .now, timeout: slateTimeout) else { return nil }
            guard actions.isEmpty else { return apply(actions, to: &state) }
            if run.slate == nil { run.slate = built }
            guard let slate = run.slate, state.hls != nil else {
                state.slate = run
                return nil
            }
            if run.group == 0 {
                switchTracks(&state, video: slate.video, audio: slate.audio)
                state.timeline.beginSource()
            }
            for packet in slate.group(run.group) { emit(&state, state.timeline.map(packet)) }
            run.group += 1
            state.slate = run
            return nil
        }
        guard let ended else { return }
        logger.info("ingest: the publisher did not return; HLS ended", metadata: ["stream": "\(id)"])
        finish(ended)
    }

    /// HLS for viewers: the source as it is, and with a ladder, its renditions and a master
    /// playlist over them all (the source then lives in `source/`); and the relays.
    private func startHLS(_ state: inout State, video: ContainerWriter.VideoTrack) throws {
        let renditions = ladder
        state.outputVideo = video
        state.outputAudio = state.audio
        defer {
            if state.hls != nil {
                for relay in settings.withLock({ $0.relays }) { startRelay(&state, relay, video: video, audio: state.audio) }
            }
        }
        // A node transcodes only so many ladders at once; past that a stream is served as it comes.
        let ladderRoom = LadderTranscoder.running.load(ordering: .relaxed) < maxLadders
        if !renditions.isEmpty, !ladderRoom {
            logger.warning("ingest: this server transcodes its limit of ladders; serving the source only",
                           metadata: ["stream": "\(id)", "limit": "\(maxLadders)"])
            state.lastError = "the server is transcoding its limit of \(maxLadders) ladders; the source is served without renditions"
        }
        if renditions.isEmpty || !ladderRoom {
            state.hls = try HLSOutput(directory: directory, video: video, audio: state.audio, counters: metrics.hls)
            return
        }
        try? FileManager.default.removeItem(at: directory)
        let transcoder = LadderTranscoder(directory: directory, renditions: renditions, logger: logger, counters: metrics.hls, dropped: metrics.ladderDrops)
        state.hls = try HLSOutput(directory: transcoder.sourceDirectory, video: video, audio: state.audio, counters: metrics.hls)
        transcoder.changeTracks(video: video, audio: state.audio)
        state.ladder = transcoder
    }

    private func switchTracks(_ state: inout State, video: ContainerWriter.VideoTrack, audio: ContainerWriter.AudioTrack?) {
        state.outputVideo = video
        state.outputAudio = audio
        state.hls?.changeTracks(video: video, audio: audio)
        state.ladder?.changeTracks(video: video, audio: audio)
        for push in state.relays.values { push.changeTracks(video: video, audio: audio) }
    }

    /// A packet on the stream's clock to every output.
    private func emit(_ state: inout State, _ packet: ProgramPacket) {
        state.hls?.offer(packet)
        state.ladder?.offer(packet, sourceBitrate: state.rate.bitsPerSecond)
        for push in state.relays.values { push.offer(packet) }
    }

    /// Restreams to `relay` from the next keyframe: the publisher as it comes, and the slate
    /// while it is away, so the destination's own stream does not end.
    private func startRelay(_ state: inout State, _ relay: IngestRelay, video: ContainerWriter.VideoTrack, audio: ContainerWriter.AudioTrack?) {
        let push = DestinationPush(id: relay.id, endpoint: relay.endpoint, video: video, audio: audio,
                                   videoBitrateKbps: state.rate.bitsPerSecond / 1000, group: group, policy: outbound) { [weak self] relayState in
            self?.noteRelay(relay.id, relayState)
        }
        state.relays[relay.id] = push
        push.start()
        logger.info("ingest: relaying", metadata: ["stream": "\(id)", "destination": "\(relay.id)", "to": "\(relay.endpoint.tcURL)"])
    }

    /// Takes a relay off the stream; the push is stopped once the lock is released.
    private func removeRelay(_ state: inout State, id relayID: String) -> [DestinationPush] {
        guard let push = state.relays.removeValue(forKey: relayID) else { return [] }
        state.relayStates[relayID] = nil
        return [push]
    }

    private func noteRelay(_ relayID: String, _ relayState: DestinationState) {
        let current = state.withLock { state -> Bool in
            guard state.relays[relayID] != nil else { return false }
            state.relayStates[relayID] = relayState
            return true
        }
        guard current else { return }
        switch relayState {
        case .failed(let reason), .reconnecting(_, _, let reason):
            logger.warning("ingest: relay \(relayState.name)", metadata: ["stream": "\(id)", "destination": "\(relayID)", "reason": "\(reason)"])
        default:
            logger.info("ingest: relay \(relayState.name)", metadata: ["stream": "\(id)", "destination": "\(relayID)"])
        }
    }

    /// Closes HLS and the ladder; returns the relays' pushes, stopped once the lock is released.
    private func endHLS(_ state: inout State) -> [DestinationPush] {
        state.hls?.finish()
        state.hls = nil
        state.ladder?.finish()
        state.ladder = nil
        let relays = Array(state.relays.keys).flatMap { removeRelay(&state, id: $0) }
        state.outputVideo = nil
        state.outputAudio = nil
        state.timeline = IngestTimeline()
        return relays
    }
}

/// Bits and frames per second over the last few whole seconds.
struct RateWindow {
    private var buckets: [(second: Int64, bytes: Int, frames: Int)] = []
    private let origin = ContinuousClock.now
    static let seconds = 5

    /// Counts a packet; true when a new second began (figures worth publishing).
    mutating func add(bytes: Int, frame: Bool, at instant: ContinuousClock.Instant) -> Bool {
        let second = (instant - origin).components.seconds
        var rolled = false
        if buckets.last?.second != second {
            buckets.append((second, 0, 0))
            buckets.removeAll { $0.second < second - Int64(Self.seconds) }
            rolled = true
        }
        buckets[buckets.count - 1].bytes += bytes
        if frame { buckets[buckets.count - 1].frames += 1 }
        return rolled
    }

    /// Whole seconds only; a second with no packets at all has no bucket but still counts.
    private var complete: (bytes: Int, frames: Int, seconds: Int)? {
        guard let first = buckets.first, let last = buckets.last, last.second > first.second else { return nil }
        let whole = buckets.dropLast()
        return (whole.reduce(0) { $0 + $1.bytes }, whole.reduce(0) { $0 + $1.frames }, Int(last.second - first.second))
    }

    var bitsPerSecond: Int { complete.map { $0.bytes * 8 / $0.seconds } ?? 0 }

    var framesPerSecond: Double { complete.map { Double($0.frames) / Double($0.seconds) } ?? 0 }
}
