import FLV
import Logging
import NIOCore
import NIOPosix
import RTMP
import Synchronization

/// The RTMP listener encoders publish to (`rtmp://HOST:PORT/live` + stream key). Hostile
/// input is bounded: connections per address and in all, time and bytes to reach a
/// publish, silence while live, chunk, message and buffer sizes (in `RTMPServerSession`).
/// Give it event loops of its own, so that parsing encoders' bytes never delays HTTP.
public final class RTMPIngestServer: Sendable {
    public struct Limits: Sendable {
        public var connectionsPerAddress = 8
        /// Connections from everyone together: addresses are cheap (a /64, all of 127/8).
        public var connections = 256
        /// Bytes a connection may send before its publish is accepted: the handshake and a
        /// few commands take about 5 KB.
        public var bytesBeforePublish = 64 << 10
        /// From accept to an accepted publish.
        public var publishDeadline: TimeAmount = .seconds(10)
        /// No bytes for this long and the connection is closed.
        public var idleTimeout: TimeAmount = .seconds(30)
        public var maxMessageSize = 4 << 20

        public init() {}
    }

    private let hub: IngestHub
    private let host: String
    private let port: Int
    private let limits: Limits
    private let group: any EventLoopGroup
    private let logger: Logger
    private let channel = Mutex<(any Channel)?>(nil)
    private let perAddress = Mutex<(byAddress: [String: Int], total: Int)>(([:], 0))

    public init(hub: IngestHub, host: String, port: Int, limits: Limits = Limits(), group: any EventLoopGroup, logger: Logger) {
        self.hub = hub
        self.host = host
        self.port = port
        self.limits = limits
        self.group = group
        self.logger = logger
    }

    /// Listens; returns the bound port (useful when `port` is 0).
    public func start() async throws -> Int {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { [self] channel in
                let address = channel.remoteAddress?.ipAddress ?? "unknown"
                guard admit(address) else {
                    logger.warning("rtmp: too many connections", metadata: [
                        "from": "\(address)", "per_address": "\(limits.connectionsPerAddress)", "in_all": "\(limits.connections)",
                    ])
                    return channel.close()
                }
                channel.closeFuture.whenComplete { [self] _ in release(address) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: limits.idleTimeout))
                    try channel.pipeline.syncOperations.addHandler(
                        RTMPIngestHandler(hub: hub, address: address, limits: limits, logger: logger))
                }
            }
        let bound = try await bootstrap.bind(host: host, port: port).get()
        channel.withLock { $0 = bound }
        return bound.localAddress?.port ?? port
    }

    public func stop() async {
        let bound = channel.withLock { channel in
            defer { channel = nil }
            return channel
        }
        try? await bound?.close()
    }

    private func admit(_ address: String) -> Bool {
        perAddress.withLock { counts in
            guard counts.total < limits.connections, counts.byAddress[address, default: 0] < limits.connectionsPerAddress else { return false }
            counts.byAddress[address, default: 0] += 1
            counts.total += 1
            return true
        }
    }

    private func release(_ address: String) {
        perAddress.withLock { counts in
            counts.byAddress[address, default: 1] -= 1
            if counts.byAddress[address] == 0 { counts.byAddress[address] = nil }
            counts.total -= 1
        }
    }
}

/// One encoder's connection: the server session, FLV to elementary streams, and the
/// stream it publishes to.
final class RTMPIngestHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let hub: IngestHub
    private let address: String
    private let limits: Limits
    private let logger: Logger
    private var session: RTMPServerSession
    private var elementary = FLVElementaryStreams()
    private var publisher: IngestPublisher?
    private var deadline: Scheduled<Void>?
    private var closing = false
    /// Bytes received while no publish has been accepted.
    private var bytesBeforePublish = 0
    typealias Limits = RTMPIngestServer.Limits

    init(hub: IngestHub, address: String, limits: Limits, logger: Logger) {
        self.hub = hub
        self.address = address
        self.limits = limits
        self.logger = logger
        session = RTMPServerSession(maxMessageSize: limits.maxMessageSize)
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        let address = address
        let logger = logger
        deadline = context.eventLoop.scheduleTask(in: limits.publishDeadline) {
            logger.notice("rtmp: no publish in time; closing", metadata: ["from": "\(address)"])
            channel.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        var buffer = unwrapInboundIn(data)
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        if publisher == nil {
            bytesBeforePublish += bytes.count
            guard bytesBeforePublish <= limits.bytesBeforePublish else {
                logger.notice("rtmp: too many bytes before an accepted publish; closing",
                              metadata: ["from": "\(address)", "limit": "\(limits.bytesBeforePublish)"])
                close(context: context)
                return
            }
        }
        do {
            for event in try session.receive(bytes) { handle(event, context: context) }
        } catch {
            logger.notice("rtmp: closing a connection that broke the protocol", metadata: ["from": "\(address)", "error": "\(error)"])
            close(context: context)
        }
    }

    private func handle(_ event: RTMPServerSession.Event, context: ChannelHandlerContext) {
        switch event {
        case .send(let bytes):
            write(bytes, context: context)
        case .publish(let app, let key, let query):
            authorize(IngestRequest(transport: .rtmp, app: app, streamKey: key, query: query, remoteAddress: address), context: context)
        case .media(let kind, let timestamp, let body):
            guard let publisher else { return }
            do {
                let outputs = kind == .audio ? try elementary.audio(timestamp: timestamp, body: body) : try elementary.video(timestamp: timestamp, body: body)
                for output in outputs {
                    switch output {
                    case .tracks: publisher.setTracks(video: elementary.video, audio: elementary.audio)
                    case .packet(let packet): publisher.send(packet)
                    }
                }
                if let reason = elementary.unsupportedVideo {
                    publisher.fail(reason)
                    self.publisher = nil
                }
            } catch {
                // One bad tag is dropped; the stream goes on from the next keyframe.
                logger.debug("rtmp: unreadable tag dropped", metadata: ["from": "\(address)", "error": "\(error)"])
            }
        case .metadata(let properties):
            elementary.metadata(properties)
            publisher?.setTracks(video: elementary.video, audio: elementary.audio)
        case .unpublished:
            publisher?.detach(reason: "the encoder unpublished")
            publisher = nil
        case .close(let reason):
            logger.notice("rtmp: closing", metadata: ["from": "\(address)", "reason": "\(reason)"])
            close(context: context)
        }
    }

    private func authorize(_ request: IngestRequest, context: ChannelHandlerContext) {
        let channel = context.channel
        let promise = context.eventLoop.makePromise(of: Result<IngestPublisher, IngestRefusal>.self)
        promise.completeWithTask { [hub] in
            await hub.publish(request) { _ in channel.close(promise: nil) }
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        promise.futureResult.whenSuccess { result in
            let (handler, context) = bound.value
            handler.finishAuthorization(result, context: context)
        }
    }

    private func finishAuthorization(_ result: Result<IngestPublisher, IngestRefusal>, context: ChannelHandlerContext) {
        switch result {
        case .success(let publisher):
            guard context.channel.isActive, !closing else {
                publisher.detach(reason: "the connection closed while it was being authorized")
                return
            }
            deadline?.cancel()
            deadline = nil
            bytesBeforePublish = 0
            self.publisher = publisher
            write(session.acceptPublish(), context: context)
        case .failure(let refusal):
            write(session.rejectPublish(description: refusal.reason), context: context)
            close(context: context)
        }
    }

    private func write(_ bytes: [UInt8], context: ChannelHandlerContext) {
        guard !bytes.isEmpty, context.channel.isActive else { return }
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
    }

    private func close(context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            logger.notice("rtmp: no data for \(limits.idleTimeout.nanoseconds / 1_000_000_000) s; closing", metadata: ["from": "\(address)"])
            close(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        publisher?.detach(reason: "the connection closed")
        publisher = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("rtmp: connection error", metadata: ["from": "\(address)", "error": "\(error)"])
        close(context: context)
    }
}
