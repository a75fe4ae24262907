import Foundation
import Logging
import MediaCodecs
import NetworkPolicy
import NIOCore
import NIOPosix
import RTMP
import Synchronization

/// An encoder asking to publish, before any of its media is read.
public struct IngestRequest: Sendable, Equatable {
    public var transport: IngestProtocol
    /// The RTMP application (`live`), or the resource an SRT stream ID names.
    public var app: String
    public var streamKey: String
    /// What followed `?` in the stream name (tokens some encoders add), for a webhook.
    public var query: String
    public var remoteAddress: String

    public init(transport: IngestProtocol, app: String, streamKey: String, query: String = "", remoteAddress: String) {
        self.transport = transport
        self.app = app
        self.streamKey = streamKey
        self.query = query
        self.remoteAddress = remoteAddress
    }
}

/// A destination an ingest stream is restreamed to as it comes, without transcoding.
public struct IngestRelay: Sendable, Equatable {
    /// The destination's ID in the store.
    public var id: String
    public var endpoint: RTMPEndpoint

    public init(id: String, endpoint: RTMPEndpoint) {
        self.id = id
        self.endpoint = endpoint
    }
}

/// A stream's settings, as its owner chose them.
public struct IngestSettings: Sendable, Equatable {
    /// The SRT encryption passphrase a publisher must match.
    public var passphrase: String?
    /// Whether HLS plays without a signed URL.
    public var publicHLS: Bool
    /// Renditions transcoded besides the source; none: passthrough only.
    public var ladder: [Rendition]
    /// RTMP(S) destinations that get the stream as it comes.
    public var relays: [IngestRelay]

    public init(passphrase: String? = nil, publicHLS: Bool = false, ladder: [Rendition] = [], relays: [IngestRelay] = []) {
        self.passphrase = passphrase
        self.publicHLS = publicHLS
        self.ladder = ladder
        self.relays = relays
    }
}

/// What the owner of the stream keys says about a publish.
public enum IngestDecision: Sendable, Equatable {
    case allow(streamID: String, settings: IngestSettings = IngestSettings())
    case deny(String)
}

/// Every ingest stream on this node, by stream ID. Publishers come in through `publish`
/// (from the RTMP and SRT servers and WHIP); the stream API starts and stops streams.
public final class IngestHub: Sendable {
    /// `DATA_DIR/hls/streams`: each stream's HLS lives in a folder named by its ID.
    public let hlsRoot: URL
    public let slateTimeout: Duration
    private let authorize: @Sendable (IngestRequest) async -> IngestDecision
    private let onStatus: @Sendable (IngestStreamSnapshot) -> Void
    private let streams = Mutex<[String: IngestStream]>([:])
    private let webhook: OnPublishWebhook?
    private let group: any EventLoopGroup
    private let outbound: OutboundPolicy
    private let maxLadders: Int
    private let logger: Logger

    /// `webhook`: asked after the stream key checks out, with nginx-rtmp's `on_publish` semantics.
    /// `outbound`: where relays may connect. `maxLadders`: ladders transcoded at once, over all streams.
    public init(hlsRoot: URL, slateTimeout: Duration = .seconds(60), webhook: OnPublishWebhook? = nil,
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, outbound: OutboundPolicy = OutboundPolicy(),
                maxLadders: Int = max(1, System.coreCount), logger: Logger,
                authorize: @escaping @Sendable (IngestRequest) async -> IngestDecision,
                onStatus: @escaping @Sendable (IngestStreamSnapshot) -> Void = { _ in }) {
        self.hlsRoot = hlsRoot
        self.slateTimeout = slateTimeout
        self.webhook = webhook
        self.group = group
        self.outbound = outbound
        self.maxLadders = maxLadders
        self.logger = logger
        self.authorize = authorize
        self.onStatus = onStatus
    }

    public func stream(_ id: String) -> IngestStream? {
        streams.withLock { $0[id] }
    }

    private func streamOrNew(_ id: String) -> IngestStream {
        streams.withLock { streams in
            if let stream = streams[id] { return stream }
            let stream = IngestStream(id: id, directory: hlsRoot.appendingPathComponent(id), slateTimeout: slateTimeout,
                                      group: group, outbound: outbound, maxLadders: maxLadders, logger: logger, onStatus: onStatus)
            streams[id] = stream
            return stream
        }
    }

    /// Arms the stream: the next publish with its key is accepted.
    public func start(_ id: String, settings: IngestSettings = IngestSettings()) {
        let stream = streamOrNew(id)
        stream.configure(settings)
        stream.arm()
    }

    /// New settings for a stream that exists: relays added or removed take effect at once,
    /// a new ladder from the next time its HLS starts.
    public func configure(_ id: String, settings: IngestSettings) {
        stream(id)?.configure(settings)
    }

    /// Stops the stream: its publisher is closed, HLS ends, publishes are refused.
    public func stop(_ id: String) {
        streamOrNew(id).stop()
    }

    /// Watches a stream's publisher (see `IngestStream.watch`), whether or not one is connected yet.
    public func watch(_ id: String, _ handler: @escaping @Sendable (IngestFeedEvent) -> Void) -> (stream: IngestStream, token: UInt64) {
        let stream = streamOrNew(id)
        return (stream, stream.watch(handler))
    }

    /// Forgets the stream (it was deleted): as stop, then nothing is kept.
    public func remove(_ id: String) {
        let stream = streams.withLock { $0.removeValue(forKey: id) }
        stream?.stop()
        try? FileManager.default.removeItem(at: hlsRoot.appendingPathComponent(id))
    }

    /// Closes every publisher and ends every playlist for a server going down, leaving each
    /// stream's status as it was so it takes publishers again after a restart.
    public func shutdown() {
        for stream in streams.withLock({ Array($0.values) }) { stream.shutdown() }
    }

    /// Asks whether `request` may publish and, if so, makes it its stream's publisher.
    /// `close` ends the publisher's connection when the stream drops it (replaced, stopped).
    public func publish(_ request: IngestRequest, close: @escaping @Sendable (String) -> Void) async -> Result<IngestPublisher, IngestRefusal> {
        switch await check(request) {
        case .deny(let reason): .failure(IngestRefusal(reason: reason))
        case .allow(let id, let settings): attach(streamID: id, settings: settings, request: request, close: close)
        }
    }

    /// Whether `request` may publish, and to which stream: the key, then the webhook;
    /// refusals are logged.
    public func check(_ request: IngestRequest) async -> IngestDecision {
        var decision = await checkKey(request)
        if case .allow(let id, _) = decision, let refusal = await askWebhook(request, streamID: id) { decision = .deny(refusal) }
        return decision
    }

    /// The stream key alone: what must be known before a connection is accepted (SRT sets
    /// the stream's passphrase then). Refusals are logged.
    public func checkKey(_ request: IngestRequest) async -> IngestDecision {
        let decision = await authorize(request)
        if case .deny(let reason) = decision { logRefusal(request, reason) }
        return decision
    }

    /// The on_publish webhook's verdict on a publish whose key checked out: nil to allow,
    /// else what the publisher is told.
    public func askWebhook(_ request: IngestRequest, streamID id: String) async -> String? {
        guard let webhook, let refusal = await webhook.ask(request, streamID: id, group: group) else { return nil }
        // The detail names the operator's endpoint; the publisher hears only the verdict.
        logger.warning("ingest: on_publish refused", metadata: ["stream": "\(id)", "detail": "\(refusal)"])
        let reason = "the server's publish check refused this stream"
        logRefusal(request, reason)
        return reason
    }

    private func logRefusal(_ request: IngestRequest, _ reason: String) {
        logger.notice("ingest: publish refused", metadata: ["transport": "\(request.transport.rawValue)", "from": "\(request.remoteAddress)", "reason": "\(reason)"])
    }

    /// Makes an allowed publisher its stream's publisher, unless the stream stopped meanwhile.
    public func attach(streamID id: String, settings: IngestSettings, request: IngestRequest,
                       close: @escaping @Sendable (String) -> Void) -> Result<IngestPublisher, IngestRefusal> {
        let stream = streamOrNew(id)
        stream.configure(settings)
        let info = IngestPublisherInfo(transport: request.transport, remoteAddress: request.remoteAddress, connectedAt: Date())
        guard let token = stream.attach(info, close: close) else {
            return .failure(IngestRefusal(reason: "stream \(id) is \(stream.snapshot.status.rawValue); start it with POST /api/streams"))
        }
        logger.info("ingest: publishing", metadata: ["stream": "\(id)", "transport": "\(request.transport.rawValue)", "from": "\(request.remoteAddress)"])
        return .success(IngestPublisher(stream: stream, token: token))
    }
}

public struct IngestRefusal: Error, Sendable, Equatable {
    public var reason: String
}

/// One publisher's handle on its stream. Once another publisher takes the stream over,
/// every call here is ignored.
public final class IngestPublisher: Sendable {
    public let stream: IngestStream
    let token: UInt64

    init(stream: IngestStream, token: UInt64) {
        self.stream = stream
        self.token = token
    }

    public var streamID: String { stream.id }

    public func setTracks(video: ContainerWriter.VideoTrack?, audio: ContainerWriter.AudioTrack?) {
        stream.setTracks(token: token, video: video, audio: audio)
    }

    public func send(_ packet: ProgramPacket) {
        stream.send(token: token, packet)
    }

    public func fail(_ reason: String) {
        stream.fail(token: token, reason)
    }

    public func noteDropped(frames: Int) {
        stream.noteDropped(token: token, frames: frames)
    }

    public func detach(reason: String) {
        stream.detach(token: token, reason: reason)
    }
}
