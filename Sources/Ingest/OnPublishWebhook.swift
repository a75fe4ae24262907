import Foundation
import NetworkPolicy
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// nginx-rtmp's `on_publish`: before a publish goes ahead, the operator's endpoint gets a
/// form POST describing it (`call=publish`, `app`, `name`, `addr`, …, plus the stream name's
/// own query arguments) and answers 2xx to allow it; anything else, or no answer in time,
/// refuses it.
///
/// What `ask` returns is for the server's log: it may name the endpoint, whose query often
/// carries a secret, so publishers are told only that the check refused them.
public struct OnPublishWebhook: Sendable {
    public let url: URL
    public let timeout: TimeAmount
    private let policy: OutboundPolicy
    private let host: String
    private let port: Int
    private let secure: Bool
    private let path: String

    public init(url text: String, timeout: TimeAmount = .seconds(5), policy: OutboundPolicy) throws(IngestRefusal) {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty else {
            throw IngestRefusal(reason: "the on_publish URL must be http:// or https:// with a host, not \(text)")
        }
        self.url = url
        self.timeout = timeout
        self.policy = policy
        self.host = host
        secure = scheme == "https"
        port = url.port ?? (secure ? 443 : 80)
        let query = url.query.map { "?\($0)" } ?? ""
        path = (url.path.isEmpty ? "/" : url.path) + query
    }

    /// The form nginx-rtmp sends, with `transport` and `stream_id` added.
    static func form(_ request: IngestRequest, streamID: String) -> String {
        var fields: [(String, String)] = [
            ("call", "publish"), ("app", request.app), ("name", request.streamKey), ("type", "live"),
            ("addr", request.remoteAddress), ("transport", request.transport.rawValue), ("stream_id", streamID),
        ]
        for pair in request.query.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            guard !fields.contains(where: { $0.0 == name }) else { continue }
            fields.append((name, parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""))
        }
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return fields.map { "\($0.0.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }
            .joined(separator: "&")
    }

    /// nil when the endpoint allows the publish; otherwise why not.
    public func ask(_ request: IngestRequest, streamID: String, group: any EventLoopGroup) async -> String? {
        let body = Self.form(request, streamID: streamID)
        let addresses: [SocketAddress]
        do {
            addresses = try await policy.resolve(host: host, port: port)
        } catch {
            return "on_publish endpoint not allowed: \(error.reason)"
        }
        let tls: NIOSSLContext?
        do {
            tls = secure ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
        } catch {
            return "on_publish: TLS setup failed: \(error)"
        }
        let answer = group.next().makePromise(of: HTTPResponseStatus.self)
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: [
            "Host": port == (secure ? 443 : 80) ? host : "\(host):\(port)", "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": "\(body.utf8.count)", "Connection": "close", "User-Agent": "Tally",
        ])
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelInitializer { [host] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: host)) }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(WebhookAnswerHandler(answer: answer))
                }
            }
        do {
            let channel = try await bootstrap.connect(to: addresses[0]).get()
            let deadline = channel.eventLoop.scheduleTask(in: timeout) { answer.fail(ChannelError.connectTimeout(timeout)) }
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            channel.write(HTTPClientRequestPart.body(.byteBuffer(channel.allocator.buffer(string: body))), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            defer {
                deadline.cancel()
                channel.close(promise: nil)
            }
            let status = try await answer.futureResult.get()
            return (200..<300).contains(status.code) ? nil : "on_publish answered \(status.code) \(status.reasonPhrase)"
        } catch {
            answer.fail(error)
            return "on_publish endpoint did not answer: \(error)"
        }
    }
}

/// Completes with the status line of the first response; the body is not needed.
private final class WebhookAnswerHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPClientResponsePart
    let answer: EventLoopPromise<HTTPResponseStatus>

    init(answer: EventLoopPromise<HTTPResponseStatus>) {
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) { answer.succeed(head.status) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        answer.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        answer.fail(ChannelError.eof)
    }
}
