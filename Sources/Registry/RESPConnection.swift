import NIOCore
import NIOPosix

/// One TCP connection to Redis. Requests are pipelined and answered in order; in push mode
/// (a subscriber connection) every reply goes to `onPush` instead.
final class RESPConnection: Sendable {
    private let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
    }

    static func connect(
        host: String, port: Int, group: any EventLoopGroup, connectTimeout: TimeAmount, requestTimeout: TimeAmount,
        onPush: (@Sendable (RESPValue) -> Void)? = nil
    ) async throws -> RESPConnection {
        do {
            let channel = try await ClientBootstrap(group: group)
                .connectTimeout(connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(RESPHandler(requestTimeout: requestTimeout, onPush: onPush))
                    }
                }
                .connect(host: host, port: port).get()
            return RESPConnection(channel: channel)
        } catch {
            throw RegistryError.unavailable("cannot connect to redis at \(host):\(port): \(error)")
        }
    }

    var isActive: Bool { channel.isActive }
    var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    func send(_ arguments: [String]) async throws -> RESPValue {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        channel.writeAndFlush(RESPRequest(bytes: RESPEncoder.encode(arguments), reply: promise), promise: nil)
        return try await promise.futureResult.get()
    }

    /// For push mode, where no reply is awaited.
    func sendWithoutReply(_ arguments: [String]) {
        channel.writeAndFlush(RESPRequest(bytes: RESPEncoder.encode(arguments), reply: nil), promise: nil)
    }

    func close() {
        channel.close(promise: nil)
    }
}

struct RESPRequest {
    var bytes: [UInt8]
    var reply: EventLoopPromise<RESPValue>?
}

/// Matches replies to requests. A request that outlives its timeout closes the connection:
/// later replies could no longer be matched, and the caller must not hang.
private final class RESPHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RESPRequest
    typealias OutboundOut = ByteBuffer

    private let decoder = RESPDecoder()
    private let requestTimeout: TimeAmount
    private let onPush: (@Sendable (RESPValue) -> Void)?
    private var waiting: CircularBuffer<(promise: EventLoopPromise<RESPValue>, timeout: Scheduled<Void>)> = []

    init(requestTimeout: TimeAmount, onPush: (@Sendable (RESPValue) -> Void)?) {
        self.requestTimeout = requestTimeout
        self.onPush = onPush
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if let reply = request.reply {
            guard context.channel.isActive else {
                reply.fail(RegistryError.unavailable("connection to redis is closed"))
                return
            }
            let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
            let timeout = context.eventLoop.assumeIsolated().scheduleTask(in: requestTimeout) {
                loopBoundContext.value.close(promise: nil)
            }
            waiting.append((reply, timeout))
        }
        context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: request.bytes)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        do {
            try buffer.withUnsafeReadableBytes { try decoder.feed($0) }
            while let reply = try decoder.next() {
                if let onPush {
                    onPush(reply)
                } else if let next = waiting.popFirst() {
                    next.timeout.cancel()
                    next.promise.succeed(reply)
                }
            }
        } catch {
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RegistryError.unavailable("connection to redis closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(RegistryError.unavailable("redis connection error: \(error)"))
        context.close(promise: nil)
    }

    private func failAll(_ error: RegistryError) {
        while let next = waiting.popFirst() {
            next.timeout.cancel()
            next.promise.fail(error)
        }
    }
}
