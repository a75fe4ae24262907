import NetworkPolicy
import NIOPosix
import Testing

@testable import Ingest

@Suite struct OnPublishWebhookTests {
    @Test func theFormIsNginxRTMPsWithTheStreamNamesArguments() {
        let request = IngestRequest(transport: .rtmp, app: "live", streamKey: "key one", query: "token=a%26b&app=ignored&flag", remoteAddress: "10.0.0.7")
        let form = OnPublishWebhook.form(request, streamID: "show")
        #expect(form == "call=publish&app=live&name=key%20one&type=live&addr=10.0.0.7&transport=rtmp&stream_id=show&token=a%26b&flag=")
    }

    @Test func onlyHTTPURLsWithAHostAreTaken() throws {
        #expect(throws: IngestRefusal.self) { try OnPublishWebhook(url: "ftp://example.com/hook", policy: OutboundPolicy()) }
        #expect(throws: IngestRefusal.self) { try OnPublishWebhook(url: "http:///hook", policy: OutboundPolicy()) }
        _ = try OnPublishWebhook(url: "https://hooks.example.com:8443/on_publish?secret=1", policy: OutboundPolicy())
    }

    @Test func anEndpointThatDoesNotAnswerRefuses() async throws {
        // Port 9 on loopback: nothing listens, the connection is refused at once.
        let webhook = try OnPublishWebhook(url: "http://127.0.0.1:9/hook", timeout: .seconds(2), policy: .unrestricted)
        let why = await webhook.ask(IngestRequest(transport: .srt, app: "live", streamKey: "k", remoteAddress: "127.0.0.1"), streamID: "s",
                                    group: MultiThreadedEventLoopGroup.singleton)
        #expect(why?.contains("did not answer") == true)
    }

    /// Aimed at loopback with no allow-list, the webhook is never called; the refusal says
    /// why (for the log), and asking leaks nothing (NIO traps on an abandoned promise).
    @Test func aLoopbackEndpointIsNotAllowed() async throws {
        let webhook = try OnPublishWebhook(url: "http://127.0.0.1:9/hook?secret=s3cret", timeout: .seconds(2), policy: OutboundPolicy())
        let why = await webhook.ask(IngestRequest(transport: .rtmp, app: "live", streamKey: "k", remoteAddress: "127.0.0.1"), streamID: "s",
                                    group: MultiThreadedEventLoopGroup.singleton)
        #expect(why?.contains("not allowed") == true)
    }
}
