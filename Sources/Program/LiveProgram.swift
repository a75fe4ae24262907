import Compositor
import Drawing
import Dispatch
import Foundation
import Ingest
import Layout
import Logging
import MediaCodecs
import Metrics
import NetworkPolicy
import NIOCore
import Outputs
import RTMP
import RTP
import SFU
import Synchronization

/// A destination as the program pushes to it: the key already unsealed.
public struct PushTarget: Sendable {
    public var id: String
    public var url: String
    public var streamKey: String

    public init(id: String, url: String, streamKey: String) {
        self.id = id
        self.url = url
        self.streamKey = streamKey
    }
}

/// What one stage tile shows: a person in the studio, an encoder's ingest stream, or a clip
/// from the host's library.
public enum StageSource: Hashable, Sendable {
    case participant(ParticipantID)
    case stream(String)
    case clip(ClipSource)
}

/// What the program shows, resolved from the stored stage: layout spec, tiles in stage
/// order with their names, banner text, images already decoded.
public struct ProgramStage: Sendable {
    public var layout: LayoutSpec
    public var tiles: [(source: StageSource, name: String)]
    public var banner: String?
    public var logo: TransparentImage?
    public var background: (key: String, picture: VideoFrame)?
    public var comment: (name: String, text: String)?
    public var transition: Transition
    public var theme: Theme
    public var countdown: (label: String, until: Date)?

    public init(layout: LayoutSpec, tiles: [(source: StageSource, name: String)], banner: String?, logo: TransparentImage?,
                background: (key: String, picture: VideoFrame)?, comment: (name: String, text: String)? = nil, transition: Transition = .cut,
                theme: Theme = .standard, countdown: (label: String, until: Date)? = nil) {
        self.theme = theme
        self.countdown = countdown
        self.comment = comment
        self.transition = transition
        self.layout = layout
        self.tiles = tiles
        self.banner = banner
        self.logo = logo
        self.background = background
    }
}

/// One broadcast on air: the compositor fed by SFU taps of everyone on stage and by the
/// ingest streams on it, and every output on the program bus (RTMP destinations, recording, HLS).
public final class LiveProgram: Sendable {
    public let broadcastID: String
    public let compositor: Compositor
    public let bus = ProgramBus()
    public let recording: RecordingOutput?
    /// Why the recording asked for could not start, if it could not.
    public let recordingError: String?
    public let hls: HLSOutput
    public let destinations: [DestinationPush]
    private let sfu: SFU
    private let feeds = Mutex<[ParticipantID: ParticipantFeed]>([:])
    /// By stream id.
    private let ingestFeeds = Mutex<[String: IngestFeed]>([:])
    private let clipFeeds = Mutex<[ClipSource: ClipFeed]>([:])
    private let ingest: IngestHub?
    private let logger: Logger
    private let format: ProgramFormat
    private let layersFitTiles: Bool
    /// Each tapped participant's tile, as last told to the SFU.
    private let tiles = Mutex<[ParticipantID: TileSize]>([:])

    /// `layersFitTiles`: decode each participant from the smallest simulcast layer that fills
    /// their tile (false: the top layer, to compare against).
    public init(broadcastID: String, settings: Compositor.Settings, stage: ProgramStage, targets: [PushTarget], recordingPath: String?,
                hlsDirectory: URL, sfu: SFU, ingest: IngestHub? = nil, group: any EventLoopGroup, outbound: OutboundPolicy,
                maxRecordingBytes: Int64 = .max, layersFitTiles: Bool = true, logger: Logger,
                onDestinationState: @escaping @Sendable (String, DestinationState) -> Void) throws {
        self.broadcastID = broadcastID
        self.layersFitTiles = layersFitTiles
        self.sfu = sfu
        self.ingest = ingest
        self.logger = logger
        let bus = self.bus
        compositor = try Compositor(settings: settings, scene: Scene(layout: stage.layout, participants: []), onPacket: { bus.publish($0) })
        let format = compositor.format
        self.format = format
        // A recording that cannot start (a full disk) does not stop the show.
        do {
            recording = try recordingPath.map { path throws(CodecError) in
                try RecordingOutput(path: path, format: format.videoTrack, audio: format.audioTrack, maxBytes: maxRecordingBytes)
            }
            recordingError = nil
        } catch {
            recording = nil
            recordingError = "the recording could not start: \(error)"
        }
        hls = try HLSOutput(directory: hlsDirectory, video: format.videoTrack, audio: format.audioTrack)
        var pushes: [DestinationPush] = []
        for target in targets {
            do {
                let endpoint = try RTMPEndpoint(url: target.url, streamKey: target.streamKey)
                pushes.append(DestinationPush(id: target.id, endpoint: endpoint, format: format, group: group, policy: outbound) { onDestinationState(target.id, $0) })
            } catch {
                onDestinationState(target.id, .failed(reason: error.description))
            }
        }
        destinations = pushes
        if let recording { bus.attach(recording) }
        bus.attach(hls)
        for push in pushes { bus.attach(push) }
    }

    public func start(_ stage: ProgramStage) async {
        await update(stage)
        await openToPlayers()
        compositor.start()
        for push in destinations { push.start() }
        logger.info("program started", metadata: ["broadcast": "\(broadcastID)", "destinations": "\(destinations.count)",
                                                  "recording": "\(recording?.path ?? "off")"])
    }

    /// Publishes the program into its SFU router for WHEP players; without it the broadcast
    /// still goes out everywhere else.
    private func openToPlayers() async {
        do {
            let source = try await sfu.openLocalSource(broadcastID: ProgramPlayers.routerID(broadcastID), participantID: ProgramPlayers.participantID,
                                                       tracks: [ProgramPlayers.video, ProgramPlayers.audio]) {}
            bus.attach(try ProgramPlayers(source: source, audio: format.audioTrack, logger: logger))
        } catch {
            logger.error("program: WHEP players unavailable", metadata: ["broadcast": "\(broadcastID)", "error": "\(error)"])
        }
    }

    /// Moves the program to a new stage: taps follow whoever is on it.
    public func update(_ stage: ProgramStage) async {
        var people: [(id: ParticipantID, name: String)] = []
        var streams: [(id: String, name: String)] = []
        var clips: [(source: ClipSource, name: String)] = []
        for tile in stage.tiles {
            switch tile.source {
            case .participant(let id): people.append((id, tile.name))
            case .stream(let id): streams.append((id, tile.name))
            case .clip(let clip): clips.append((clip, tile.name))
            }
        }
        let wanted = Set(people.map(\.id))
        let (added, removed) = feeds.withLock { feeds -> ([ParticipantFeed], [ParticipantID]) in
            let removed = feeds.keys.filter { !wanted.contains($0) }
            for id in removed { feeds[id] = nil }
            var added: [ParticipantFeed] = []
            for (id, name) in people {
                if let feed = feeds[id] {
                    feed.input.name = name
                } else {
                    let feed = ParticipantFeed(participantID: id, input: CompositorInput(name: name), broadcastID: broadcastID, sfu: sfu)
                    feeds[id] = feed
                    added.append(feed)
                }
            }
            return (added, removed)
        }
        let sizes = tileSizes(stage)
        let resized = tiles.withLock { tiles in
            defer { tiles = sizes }
            return sizes.filter { id, size in tiles[id] != nil && tiles[id] != size }
        }
        for id in removed { await sfu.untap(broadcastID: broadcastID, participantID: id) }
        for feed in added {
            await sfu.tap(broadcastID: broadcastID, participantID: feed.participantID, tile: sizes[feed.participantID]) { packet in feed.push(packet) }
        }
        for (id, tile) in resized { await sfu.fitTap(broadcastID: broadcastID, participantID: id, tile: tile) }
        let (newStreams, goneStreams) = Self.reconcile(ingestFeeds, with: streams, input: \IngestFeed.input) { id, name in
            IngestFeed(input: CompositorInput(name: name), streamID: id)
        }
        for feed in goneStreams { feed.stop() }
        if let ingest { for feed in newStreams { feed.start(ingest) } }
        let (newClips, goneClips) = Self.reconcile(clipFeeds, with: clips, input: \ClipFeed.input) { source, name in
            ClipFeed(input: CompositorInput(name: name), source: source, logger: logger)
        }
        for feed in goneClips { feed.stop() }
        for feed in newClips { feed.start() }
        let inputs = stage.tiles.compactMap { tile in
            switch tile.source {
            case .participant(let id): feeds.withLock { $0[id]?.input }
            case .stream(let id): ingestFeeds.withLock { $0[id]?.input }
            case .clip(let clip): clipFeeds.withLock { $0[clip]?.input }
            }
        }
        compositor.update(Scene(layout: stage.layout, participants: inputs, banner: stage.banner, logo: stage.logo, background: stage.background,
                                comment: stage.comment, transition: stage.transition, theme: stage.theme, countdown: stage.countdown))
    }

    /// Keeps one feed per wanted key (renaming those already there), made by `make`; returns
    /// the feeds made, to start, and those no longer wanted, to stop.
    private static func reconcile<Key: Hashable & Sendable, Feed: Sendable>(_ feeds: borrowing Mutex<[Key: Feed]>, with wanted: [(Key, String)],
                                                       input: (Feed) -> CompositorInput,
                                                       make: (Key, String) -> Feed) -> (new: [Feed], gone: [Feed]) {
        feeds.withLock { feeds in
            let keys = Set(wanted.map(\.0))
            let gone = feeds.filter { !keys.contains($0.key) }
            for key in gone.keys { feeds[key] = nil }
            var new: [Feed] = []
            for (key, name) in wanted {
                if let feed = feeds[key] {
                    input(feed).name = name
                } else {
                    let feed = make(key, name)
                    feeds[key] = feed
                    new.append(feed)
                }
            }
            return (new, Array(gone.values))
        }
    }

    /// The size each participant on stage was last decoded at, for the owner's debug view.
    public var decodedSizes: [ParticipantID: (width: Int, height: Int)] {
        feeds.withLock { feeds in feeds.compactMapValues { $0.decodedSize.withLock { $0 } } }
    }

    /// Where each participant on `stage` is drawn, as the compositor will place them (a
    /// participant the layout leaves out needs only the smallest layer); none when the
    /// program decodes the top layers.
    private func tileSizes(_ stage: ProgramStage) -> [ParticipantID: TileSize] {
        guard layersFitTiles else { return [:] }
        var sizes: [ParticipantID: TileSize] = [:]
        for case (.participant(let id), _) in stage.tiles { sizes[id] = TileSize(width: 0, height: 0) }
        let placements = stage.layout.place(stage.tiles.indices.map(String.init), width: compositor.settings.width, height: compositor.settings.height)
        for placement in placements {
            guard let index = Int(placement.participant), case .participant(let id) = stage.tiles[index].source else { continue }
            sizes[id] = TileSize(width: placement.width, height: placement.height)
        }
        return sizes
    }

    /// Stops the mix, unpublishes every destination and completes the recording and the
    /// HLS playlist.
    public func stop() async {
        let ids = feeds.withLock { feeds in
            defer { feeds.removeAll() }
            return Array(feeds.keys)
        }
        for id in ids { await sfu.untap(broadcastID: broadcastID, participantID: id) }
        let streams = ingestFeeds.withLock { feeds in
            defer { feeds.removeAll() }
            return Array(feeds.values)
        }
        for feed in streams { feed.stop() }
        let clips = clipFeeds.withLock { feeds in
            defer { feeds.removeAll() }
            return Array(feeds.values)
        }
        for feed in clips { feed.stop() }
        compositor.stop()
        await withTaskGroup(of: Void.self) { group in
            for push in destinations { group.addTask { await push.stop() } }
        }
        recording?.finish()
        hls.finish()
        await sfu.closeLocalSource(broadcastID: ProgramPlayers.routerID(broadcastID), participantID: ProgramPlayers.participantID)
        let stats = compositor.stats
        logger.info("program stopped", metadata: ["broadcast": "\(broadcastID)", "frames": "\(stats.frames)", "late": "\(stats.lateFrames)",
                                                  "skipped": "\(stats.skippedFrames)"])
    }
}

/// Counters on /metrics for the decoding of stage participants.
enum FeedMetrics {
    static let decodedFrames = Counter(label: "tally_program_decoded_frames_total")
    static let decodeErrors = Counter(label: "tally_program_decode_errors_total")
    /// Pictures decoded by their height, up to each class's line: which simulcast layers the
    /// program decodes, so an operator sees that grid tiles take the middle one.
    static let heightClasses = [180, 360, 540, 720, 1080]
    private static let byHeight = (heightClasses.map(String.init) + ["larger"]).map {
        Counter(label: "tally_program_decoded_frames_by_height_total", dimensions: [("up_to", $0)])
    }

    static func decoded(height: Int) {
        byHeight[heightClasses.firstIndex { height <= $0 } ?? heightClasses.count].increment()
    }
}

/// Decodes one participant's tapped tracks into their compositor input, on a queue of its
/// own so the SFU's loop only hands packets over.
final class ParticipantFeed: Sendable {
    let participantID: ParticipantID
    let input: CompositorInput
    private let broadcastID: String
    private let sfu: SFU
    private let queue = DispatchQueue(label: "tally.feed")
    private let decoders = Mutex(Decoders())
    /// The size of the last picture decoded: which simulcast layer the tile is drawn from.
    let decodedSize = Mutex<(width: Int, height: Int)?>(nil)
    private let clock = ContinuousClock()
    private let started: ContinuousClock.Instant

    private struct Decoders: @unchecked Sendable {
        var video: [ProducerID: (assembler: FrameAssembler, decoder: any VideoDecoder)] = [:]
        var audio: [ProducerID: OpusDecoder] = [:]
    }

    init(participantID: ParticipantID, input: CompositorInput, broadcastID: String, sfu: SFU) {
        self.participantID = participantID
        self.input = input
        self.broadcastID = broadcastID
        self.sfu = sfu
        started = clock.now
    }

    func push(_ tapped: TappedPacket) {
        queue.async { [self] in decode(tapped) }
    }

    private func decode(_ tapped: TappedPacket) {
        let now = clock.now - started
        if tapped.kind == .audio {
            guard tapped.codec.lowercased() == "opus" else { return }
            let samples = decoders.withLock { decoders -> [Float]? in
                if decoders.audio[tapped.producerID] == nil { decoders.audio[tapped.producerID] = try? OpusDecoder() }
                return try? decoders.audio[tapped.producerID]?.decode(tapped.packet.payload)
            }
            if let samples, !samples.isEmpty {
                input.deliver(audio: samples, capture: tapped.captureTime(of: tapped.packet.timestamp, clockRate: tapped.clockRate))
            }
            return
        }
        guard let codec = VideoCodec(sdpName: tapped.codec) else { return }
        var keyframeNeeded = false
        let pictures = decoders.withLock { decoders -> [(VideoFrame, UInt32)] in
            if tapped.layerChanged || decoders.video[tapped.producerID] == nil {
                guard let decoder = try? VideoDecoders.make(codec) else { return [] }
                decoders.video[tapped.producerID] = (FrameAssembler(codec: codec), decoder)
            }
            guard var entry = decoders.video[tapped.producerID] else { return [] }
            var pictures: [(VideoFrame, UInt32)] = []
            for frame in entry.assembler.insert(tapped.packet, now: now) {
                do {
                    if let picture = try entry.decoder.decode(frame) { pictures.append((picture, frame.rtpTimestamp)) }
                } catch {
                    FeedMetrics.decodeErrors.increment()
                    entry.assembler.keyframeNeeded = true
                }
            }
            if entry.assembler.keyframeNeeded {
                keyframeNeeded = true
                entry.assembler.keyframeNeeded = false
            }
            decoders.video[tapped.producerID] = entry
            return pictures
        }
        FeedMetrics.decodedFrames.increment(by: pictures.count)
        for (picture, _) in pictures { FeedMetrics.decoded(height: picture.height) }
        if let (picture, timestamp) = pictures.last {
            decodedSize.withLock { $0 = (picture.width, picture.height) }
            input.deliver(picture, capture: tapped.captureTime(of: timestamp, clockRate: tapped.clockRate))
        }
        if keyframeNeeded { sfu.requestKeyframe(broadcastID: broadcastID, participantID: participantID) }
    }
}
