import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore

/// The studio's HTTP and WebSocket server, with a deadline on each connection's first
/// request. Hummingbird's idle timeout starts only once a first request head has been
/// parsed, so a client that connects and sends nothing, or dribbles its first head, would
/// otherwise hold its socket for ever.
struct DeadlinedChildChannel<Base: ServerChildChannel>: ServerChildChannel {
    let base: Base
    /// No bytes for this long before the server first answers, and the connection closes.
    let idle: TimeAmount
    /// However the bytes come, the first answer must start within this.
    let total: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Base.Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(FirstRequestDeadlineHandler(idle: idle, total: total), position: .first)
        }.flatMap { base.setup(channel: channel, logger: logger) }
    }

    func handle(value: Base.Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Closes the connection unless the server starts writing (a response, or a WebSocket's
/// 101) in time; removes itself at the first byte written, after which Hummingbird's own
/// idle timeout (or the WebSocket) takes over.
final class FirstRequestDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let idle: TimeAmount
    private let total: TimeAmount
    private var idleTimer: Scheduled<Void>?
    private var totalTimer: Scheduled<Void>?

    init(idle: TimeAmount, total: TimeAmount) {
        self.idle = idle
        self.total = total
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
        totalTimer = context.eventLoop.scheduleTask(in: total) { channel.close(promise: nil) }
        armIdle(context)
    }

    private func armIdle(_ context: ChannelHandlerContext) {
        idleTimer?.cancel()
        let channel = context.channel
        idleTimer = context.eventLoop.scheduleTask(in: idle) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
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
