import Foundation
import NetworkPolicy
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One HTTP/1.1 exchange that Tally starts on its own (the on_publish webhook, the ACME
/// directory): the host resolved and checked against the outbound policy, the connection made
/// to the checked address, a deadline over the whole exchange, and a bounded answer.
public struct OutboundHTTPRequest: Sendable {
    public var method: HTTPMethod
    public var url: URL
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(method: HTTPMethod, url: URL, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

public struct OutboundHTTPResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: [UInt8]
}

public struct OutboundHTTPError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public struct OutboundHTTPClient: Sendable {
    public let policy: OutboundPolicy
    public let timeout: TimeAmount
    /// Answers larger than this are refused.
    public let maxResponseBytes: Int
    private let tls: NIOSSLContext

    /// `trustedRoots`: PEM certificates trusted besides the system's (a test CA, say).
    public init(policy: OutboundPolicy, timeout: TimeAmount = .seconds(10), maxResponseBytes: Int = 1 << 20,
                trustedRoots: [NIOSSLCertificate] = []) throws {
        self.policy = policy
        self.timeout = timeout
        self.maxResponseBytes = maxResponseBytes
        var configuration = TLSConfiguration.makeClientConfiguration()
        if !trustedRoots.isEmpty {
            configuration.additionalTrustRoots = [.certificates(trustedRoots)]
        }
        tls = try NIOSSLContext(configuration: configuration)
    }

    private init(policy: OutboundPolicy, timeout: TimeAmount, maxResponseBytes: Int, tls: NIOSSLContext) {
        self.policy = policy
        self.timeout = timeout
        self.maxResponseBytes = maxResponseBytes
        self.tls = tls
    }

    /// The same client (policy, TLS context: loading the trusted roots is the costly part)
    /// with another deadline and answer bound.
    public func with(timeout: TimeAmount, maxResponseBytes: Int) -> OutboundHTTPClient {
        OutboundHTTPClient(policy: policy, timeout: timeout, maxResponseBytes: maxResponseBytes, tls: tls)
    }

    public func send(_ request: OutboundHTTPRequest, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> OutboundHTTPResponse {
        guard let scheme = request.url.scheme?.lowercased(), scheme == "http" || scheme == "https", let host = request.url.host, !host.isEmpty else {
            throw OutboundHTTPError("\(request.url) is not an http:// or https:// URL with a host")
        }
        let secure = scheme == "https"
        let port = request.url.port ?? (secure ? 443 : 80)
        let addresses: [SocketAddress]
        do {
            addresses = try await policy.resolve(host: host, port: port)
        } catch {
            throw OutboundHTTPError("\(host) is not allowed: \(error.reason)")
        }
        var path = request.url.path.isEmpty ? "/" : request.url.path
        if let query = request.url.query { path += "?\(query)" }
        var headers = HTTPHeaders([("Host", port == (secure ? 443 : 80) ? host : "\(host):\(port)"), ("User-Agent", "Tally"), ("Connection", "close")])
        for (name, value) in request.headers { headers.replaceOrAdd(name: name, value: value) }
        if !request.body.isEmpty || request.method == .POST { headers.replaceOrAdd(name: "Content-Length", value: "\(request.body.count)") }
        let head = HTTPRequestHead(version: .http1_1, method: request.method, uri: path, headers: headers)

        let answer = group.next().makePromise(of: OutboundHTTPResponse.self)
        let tls = secure ? self.tls : nil
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelInitializer { [maxResponseBytes, method = request.method] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: host)) }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(answer: answer, limit: maxResponseBytes, headRequest: method == .HEAD))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(to: addresses[0]).get()
        } catch {
            answer.fail(error)
            throw OutboundHTTPError("cannot connect to \(host):\(port): \(error)")
        }
        let deadline = channel.eventLoop.scheduleTask(in: timeout) { answer.fail(OutboundHTTPError("no answer from \(host) within \(timeout.nanoseconds / 1_000_000_000) s")) }
        defer {
            deadline.cancel()
            channel.close(promise: nil)
        }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if !request.body.isEmpty { channel.write(HTTPClientRequestPart.body(.byteBuffer(channel.allocator.buffer(bytes: request.body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        return try await answer.futureResult.get()
    }
}

/// Gathers one response; fails past `limit` bytes of body, or if the connection ends first.
private final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    private let answer: EventLoopPromise<OutboundHTTPResponse>
    private let limit: Int
    private let headRequest: Bool
    private var response: OutboundHTTPResponse?

    init(answer: EventLoopPromise<OutboundHTTPResponse>, limit: Int, headRequest: Bool) {
        self.answer = answer
        self.limit = limit
        self.headRequest = headRequest
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            response = OutboundHTTPResponse(status: head.status, headers: head.headers, body: [])
            if headRequest, let response { answer.succeed(response) }
        case .body(let buffer):
            guard response != nil else { return }
            response!.body += buffer.readableBytesView
            if response!.body.count > limit {
                answer.fail(OutboundHTTPError("the answer is larger than \(limit) bytes"))
                context.close(promise: nil)
            }
        case .end:
            if let response { answer.succeed(response) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        answer.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        answer.fail(OutboundHTTPError("the connection closed before the answer was complete"))
    }
}
