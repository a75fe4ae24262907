import Foundation
import NetworkPolicy
import NIOCore
import OutboundHTTP

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

    public init(url text: String, timeout: TimeAmount = .seconds(5), policy: OutboundPolicy) throws(IngestRefusal) {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty else {
            throw IngestRefusal(reason: "the on_publish URL must be http:// or https:// with a host, not \(text)")
        }
        self.url = url
        self.timeout = timeout
        self.policy = policy
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
        do {
            let client = try OutboundHTTPClient(policy: policy, timeout: timeout, maxResponseBytes: 64 << 10)
            let answer = try await client.send(OutboundHTTPRequest(method: .POST, url: url, headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                                                   body: Array(body.utf8)), group: group)
            return (200..<300).contains(answer.status.code) ? nil : "on_publish answered \(answer.status.code) \(answer.status.reasonPhrase)"
        } catch {
            return "on_publish endpoint did not answer: \(error)"
        }
    }
}
