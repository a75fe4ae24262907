import NetworkPolicy
import NIOCore
import NIOPosix
import NIOSSL
import RTMP

/// Why a push did not start or did not last.
public enum RTMPPushError: Error, Equatable, CustomStringConvertible {
    /// The network failed (refused, reset, timed out): worth retrying for as long as it takes.
    case network(String)
    /// The server said no: bad key, unknown app, publishing not allowed.
    case rejected(String)
    /// The outbound policy does not let Tally connect there (a private or loopback address).
    case forbidden(String)

    public var description: String {
        switch self {
        case .network(let why): why
        case .rejected(let why): why
        case .forbidden(let why): why
        }
    }
}

/// One live RTMP(S) push on a NIO channel: connects, publishes, then takes FLV bodies from
/// any thread. Writes are handed to the channel's event loop; `isWritable` turns false while
/// the kernel's send buffer and NIO's are full, which is when the caller should drop.
public final class RTMPPushConnection: Sendable {
    private let channel: any Channel
    private let handler: NIOLoopBound<RTMPPushHandler>
    /// Completes when the connection closes, with why.
    public let closed: EventLoopFuture<String>

    /// Connects and publishes; returns once the server says NetStream.Publish.Start. The host
    /// is resolved and checked against `policy` now, and the connection goes to the checked
    /// address, so a name that resolves elsewhere later cannot reach a forbidden one.
    public static func open(_ endpoint: RTMPEndpoint, group: any EventLoopGroup, policy: OutboundPolicy,
                            timeout: TimeAmount = .seconds(10)) async throws(RTMPPushError) -> RTMPPushConnection {
        let addresses: [SocketAddress]
        do {
            addresses = try await policy.resolve(host: endpoint.host, port: endpoint.port)
        } catch {
            throw .forbidden(error.reason)
        }
        let loop = group.next()
        let live = loop.makePromise(of: Void.self)
        let closed = loop.makePromise(of: String.self)
        let tls: NIOSSLContext?
        if endpoint.secure {
            do {
                tls = try NIOSSLContext(configuration: .makeClientConfiguration())
            } catch {
                throw .network("TLS setup failed: \(error)")
            }
        } else {
            tls = nil
        }
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 1 << 20))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: endpoint.host))
                    }
                    try channel.pipeline.syncOperations.addHandler(RTMPPushHandler(session: RTMPPublishSession(endpoint: endpoint), live: live, closed: closed))
                }
            }
        let channel: any Channel
        do {
            channel = try await connect(bootstrap, to: addresses)
        } catch {
            live.fail(RTMPPushError.network("cannot connect to \(endpoint.host):\(endpoint.port): \(error)"))
            closed.succeed("not connected")
            throw .network("cannot connect to \(endpoint.host):\(endpoint.port): \(error)")
        }
        let deadline = loop.scheduleTask(in: timeout) {
            live.fail(RTMPPushError.network("no answer to publish within \(timeout.nanoseconds / 1_000_000_000) s"))
            channel.close(promise: nil)
        }
        do {
            try await live.futureResult.get()
            deadline.cancel()
        } catch {
            deadline.cancel()
            channel.close(promise: nil)
            throw (error as? RTMPPushError) ?? .network("\(error)")
        }
        let handler = try? await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: RTMPPushHandler.self), eventLoop: channel.eventLoop)
        }.get()
        guard let handler else { throw .network("connection closed as it went live") }
        return RTMPPushConnection(channel: channel, handler: handler, closed: closed.futureResult)
    }

    /// The first of `addresses` that answers, tried in order.
    private static func connect(_ bootstrap: ClientBootstrap, to addresses: [SocketAddress]) async throws -> any Channel {
        var lastError: any Error = ChannelError.connectPending
        for address in addresses {
            do {
                return try await bootstrap.connect(to: address).get()
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    private init(channel: any Channel, handler: NIOLoopBound<RTMPPushHandler>, closed: EventLoopFuture<String>) {
        self.channel = channel
        self.handler = handler
        self.closed = closed
    }

    public var isWritable: Bool { channel.isWritable && channel.isActive }

    /// Sends `@setDataFrame onMetaData`.
    public func sendMetadata(_ properties: [(String, AMF0Value)]) {
        let handler = self.handler
        channel.eventLoop.execute { handler.value.sendMetadata(properties) }
    }

    /// Sends one FLV tag body; `flush` false lets several go out in one write.
    public func send(_ kind: FLVTagKind, timestamp: UInt32, body: [UInt8], flush: Bool = true) {
        let handler = self.handler
        channel.eventLoop.execute { handler.value.send(kind, timestamp: timestamp, body: body, flush: flush) }
    }

    /// Unpublishes cleanly (FCUnpublish, deleteStream) and closes.
    /// A receiver that stops reading gets `goodbyeTimeout` for the goodbye, then the
    /// connection is dropped: stopping a show never waits on someone else's server.
    public func close(goodbyeTimeout: TimeAmount = .seconds(3)) async {
        let handler = self.handler
        let channel = self.channel
        try? await channel.eventLoop.submit { handler.value.unpublishAndClose() }.get()
        let deadline = channel.eventLoop.scheduleTask(in: goodbyeTimeout) { channel.close(promise: nil) }
        _ = try? await closed.get()
        deadline.cancel()
    }
}

final class RTMPPushHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var session: RTMPPublishSession
    private let live: EventLoopPromise<Void>
    private let closed: EventLoopPromise<String>
    private var context: ChannelHandlerContext?
    private var closeReason: String?

    init(session: RTMPPublishSession, live: EventLoopPromise<Void>, closed: EventLoopPromise<String>) {
        self.session = session
        self.live = live
        self.closed = closed
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        write(session.start(), flush: true)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        do {
            for event in try session.receive(bytes) {
                switch event {
                case .send(let out): write(out, flush: true)
                case .live: live.succeed(())
                case .rejected(let code, let description):
                    let reason = "\(code): \(description)"
                    closeReason = reason
                    live.fail(RTMPPushError.rejected(reason))
                    context.close(promise: nil)
                }
            }
        } catch {
            closeReason = "\(error)"
            live.fail(RTMPPushError.network("\(error)"))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch session.phase {
        case .publishing:
            // Servers that refuse a key often just hang up on the publish command.
            live.fail(RTMPPushError.rejected(closeReason ?? "the server closed the connection when asked to publish this stream key"))
        case .live, .closed:
            live.fail(RTMPPushError.network(closeReason ?? "connection closed"))
        default:
            live.fail(RTMPPushError.network(closeReason ?? "the server closed the connection during \(session.phase)"))
        }
        closed.succeed(closeReason ?? (session.phase == .closed ? "unpublished" : "the server closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closeReason = closeReason ?? "\(error)"
        context.close(promise: nil)
    }

    private func write(_ bytes: [UInt8], flush: Bool) {
        guard let context, !bytes.isEmpty else { return }
        let buffer = context.channel.allocator.buffer(bytes: bytes)
        context.write(wrapOutboundOut(buffer), promise: nil)
        if flush { context.flush() }
    }

    func sendMetadata(_ properties: [(String, AMF0Value)]) {
        guard session.phase == .live else { return }
        write(session.metadata(properties), flush: true)
    }

    func send(_ kind: FLVTagKind, timestamp: UInt32, body: [UInt8], flush: Bool) {
        guard session.phase == .live else { return }
        write(session.media(type: kind, timestamp: timestamp, body: body), flush: flush)
    }

    func unpublishAndClose() {
        guard let context else { return }
        closeReason = "unpublished"
        let goodbye = session.unpublish()
        guard !goodbye.isEmpty else {
            context.close(promise: nil)
            return
        }
        // Close only once the goodbye is on the wire; closing first would discard it.
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: goodbye))).whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
