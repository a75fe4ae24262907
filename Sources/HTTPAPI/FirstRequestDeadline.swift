import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore

/// The studio's HTTP and WebSocket server, with bounds on each connection's first request.
/// Hummingbird's idle timeout starts only once a first request head has been parsed, and a
/// first head too large to parse is never answered while its bytes are read and dropped: a
/// client that connects and sends nothing, dribbles its first head, or streams an endless
/// one would otherwise hold its socket, and the server's reading, for ever.
struct DeadlinedChildChannel<Base: ServerChildChannel>: ServerChildChannel {
    let base: Base
    let limits: FirstRequestDeadlineHandler.Limits

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Base.Value> {
        channel.eventLoop.makeCompletedFuture {
            // After TLS, when a TLS channel wraps this one: it counts and times the request itself.
            try channel.pipeline.syncOperations.addHandler(FirstRequestDeadlineHandler(limits))
        }.flatMap { base.setup(channel: channel, logger: logger) }
    }

    func handle(value: Base.Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Closes the connection unless the server starts writing (a response, or a WebSocket's
/// 101) in time and before too many bytes arrive; removes itself at the first byte written,
/// after which Hummingbird's own idle timeout (or the WebSocket) takes over.
final class FirstRequestDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Limits {
        /// No bytes for this long before the server first answers, and the connection closes.
        var idle: TimeAmount
        /// However the bytes come, the first answer must start within this.
        var total: TimeAmount
        /// Bytes a first request may bring: the largest body a route takes, and its head.
        var bytes: Int
    }

    private let limits: Limits
    private var received = 0
    private var idleTimer: Scheduled<Void>?
    private var totalTimer: Scheduled<Void>?

    init(_ limits: Limits) {
        self.limits = limits
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if totalTimer == nil { start(context) }
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        let channel = context.channel
        totalTimer = context.eventLoop.scheduleTask(in: limits.total) { channel.close(promise: nil) }
        armIdle(context)
    }

    private func armIdle(_ context: ChannelHandlerContext) {
        idleTimer?.cancel()
        let channel = context.channel
        idleTimer = context.eventLoop.scheduleTask(in: limits.idle) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytes
        guard received <= limits.bytes else {
            stop()
            context.close(promise: nil)
            return
        }
        armIdle(context)
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        stop()
        context.write(data, promise: promise)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    private func stop() {
        idleTimer?.cancel()
        totalTimer?.cancel()
        idleTimer = nil
        totalTimer = nil
    }
}
