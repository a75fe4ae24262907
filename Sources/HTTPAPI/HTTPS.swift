import Certificates
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import TURN
import Synchronization

/// TLS in front of a child channel, with whatever certificate is current when the connection
/// is accepted: a renewed or replaced certificate is served from the next handshake on.
/// Before the first certificate exists (ACME still at work) connections are closed.
struct ReloadingTLSChannel<Base: ServerChildChannel>: ServerChildChannel {
    let base: Base
    let certificate: ServerCertificate

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Base.Value> {
        guard let loaded = certificate.loaded else {
            logger.debug("tls: no certificate yet; connection closed")
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(ChannelError.inputClosed)
        }
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: loaded.context))
        }.flatMap { base.setup(channel: channel, logger: logger) }
    }

    func handle(value: Base.Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// The plain HTTP port once HTTPS is on: ACME's HTTP-01 challenges are answered, every other
/// request is sent to the same place over HTTPS (301 for GET and HEAD, 308 otherwise, which
/// keeps the method and body).
struct RedirectToHTTPSMiddleware: RouterMiddleware {
    typealias Context = AppContext
    let httpsPort: BoundPort
    let challenges: ACMEChallenges?

    static let challengePath = "/.well-known/acme-challenge/"

    func handle(_ request: Request, context: AppContext, next: (Request, AppContext) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if path.hasPrefix(Self.challengePath) {
            let token = String(path.dropFirst(Self.challengePath.count))
            guard let answer = challenges?.answer(token: token) else { return Response(status: .notFound) }
            return Response(status: .ok, headers: [.contentType: "application/octet-stream"], body: .init(byteBuffer: ByteBuffer(string: answer)))
        }
        guard let host = Self.host(of: request.head.authority) else {
            return Response(status: .badRequest, headers: [.contentType: "text/plain; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: "this server speaks HTTPS; send a Host header\n")))
        }
        let bound = httpsPort.value
        let port = bound == 443 ? "" : ":\(bound)"
        let status: HTTPResponse.Status = request.method == .get || request.method == .head ? .movedPermanently : .permanentRedirect
        return Response(status: status, headers: [.location: "https://\(host)\(port)\(request.uri.description)"])
    }

    /// The host of a Host header without its port: a name, an IPv4 address, or a bracketed
    /// IPv6 address; nil for anything else, so no header can steer the redirect elsewhere
    /// than a host name.
    static func host(of authority: String?) -> String? {
        guard let authority, !authority.isEmpty else { return nil }
        let host: Substring
        if authority.hasPrefix("[") {
            guard let end = authority.firstIndex(of: "]") else { return nil }
            host = authority[...end]
        } else {
            host = authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)[0]
        }
        let allowed = host.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-.:[]".contains($0)) }
        return allowed && !host.isEmpty ? String(host).lowercased() : nil
    }
}

/// The port a listener actually bound (the configured one, or the free one picked for 0),
/// known once it is up.
public final class BoundPort: Sendable {
    private let port: Atomic<Int>

    public init(_ configured: Int) {
        port = Atomic(configured)
    }

    public var value: Int { port.load(ordering: .relaxed) }
    public func set(_ bound: Int) { port.store(bound, ordering: .relaxed) }
}

/// Work that runs beside the servers until shutdown (certificate renewal, file watching).
public struct BackgroundService: Service {
    let body: @Sendable () async -> Void

    public init(_ body: @escaping @Sendable () async -> Void) {
        self.body = body
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown { await body() }
    }
}

/// The HTTPS port also speaks TURN: a client behind a firewall that lets only HTTPS out
/// reaches the relay on the same port as the studio (`turns:host:443?transport=tcp`). After
/// TLS, the first byte tells them apart: a STUN message starts below 4, an HTTP request with
/// a method's capital letter. HTTP is set up only once that byte is seen.
struct TURNMultiplexChannel<Base: ServerChildChannel>: ServerChildChannel {
    enum Route: Sendable {
        case http(Base.Value)
        case turn
    }
    struct Value: ServerChildChannelValue {
        let channel: any Channel
        let route: EventLoopFuture<Route>
    }

    let base: Base
    let turn: TURNServer

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let decided = channel.eventLoop.makePromise(of: Bool.self)
            let sniffer = FirstByteSniffer(decided: decided)
            try channel.pipeline.syncOperations.addHandler(sniffer)
            return decided.futureResult.flatMap { isTURN -> EventLoopFuture<Route> in
                let route: EventLoopFuture<Route>
                if isTURN {
                    route = channel.eventLoop.makeCompletedFuture { try turn.attachStream(channel) }.map { .turn }
                } else {
                    route = base.setup(channel: channel, logger: logger).map { .http($0) }
                }
                return route.always { _ in sniffer.release() }
            }
        }.map { Value(channel: channel, route: $0) }
    }

    func handle(value: Value, logger: Logger) async {
        // A connection that has sent nothing yet (a browser's preconnect) is closed on shutdown.
        let route = await withGracefulShutdownHandler {
            try? await value.route.get()
        } onGracefulShutdown: {
            value.channel.close(promise: nil)
        }
        switch route {
        case .http(let http)?: await base.handle(value: http, logger: logger)
        case .turn?:
            // A relay open when the server stops is closed, so the drain does not wait on it.
            await withGracefulShutdownHandler {
                try? await value.channel.closeFuture.get()
            } onGracefulShutdown: {
                value.channel.close(promise: nil)
            }
        case nil: break
        }
    }
}

/// Holds a connection's first bytes until the first one says which protocol it is; then
/// hands them on to what was set up behind it and leaves the pipeline. A connection that
/// sends nothing for 30 s is closed.
final class FirstByteSniffer: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private let decided: EventLoopPromise<Bool>
    private var held: [NIOAny] = []
    private var context: ChannelHandlerContext?
    private var deadline: Scheduled<Void>?

    init(decided: EventLoopPromise<Bool>) {
        self.decided = decided
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: .seconds(30)) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard held.isEmpty else {
            held.append(data)
            return
        }
        let buffer = unwrapInboundIn(data)
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return }
        held.append(data)
        // A TURN client's first message is always a STUN request (ChannelData needs a bound
        // channel first), whose first byte is below 4; no HTTP method starts so.
        decided.succeed(first < 0x04)
    }

    func channelInactive(context: ChannelHandlerContext) {
        decided.fail(ChannelError.eof)
        context.fireChannelInactive()
    }

    /// Passes on what was held and leaves; called on the channel's loop.
    func release() {
        deadline?.cancel()
        guard let context else { return }
        for data in held { context.fireChannelRead(data) }
        held = []
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        self.context = nil
    }
}
