import Testing
@testable import HTTPAPI

@Suite("HTTPS redirect")
struct HTTPSRedirectTests {
    @Test("the redirect keeps only a host from the Host header, never a path or user part")
    func hostOfAuthority() {
        #expect(RedirectToHTTPSMiddleware.host(of: "Studio.Example.com:80") == "studio.example.com")
        #expect(RedirectToHTTPSMiddleware.host(of: "203.0.113.7") == "203.0.113.7")
        #expect(RedirectToHTTPSMiddleware.host(of: "[2001:db8::1]:8080") == "[2001:db8::1]")
        #expect(RedirectToHTTPSMiddleware.host(of: "evil.example/phish") == nil)
        #expect(RedirectToHTTPSMiddleware.host(of: "user@evil.example") == nil)
        #expect(RedirectToHTTPSMiddleware.host(of: "") == nil)
        #expect(RedirectToHTTPSMiddleware.host(of: nil) == nil)
    }

    @Test("ACME names are DNS names")
    func dnsNames() {
        #expect(ServerConfiguration.isDNSName("studio.example.com"))
        #expect(!ServerConfiguration.isDNSName("localhost"))
        #expect(!ServerConfiguration.isDNSName("10.0.0.1"))
        #expect(!ServerConfiguration.isDNSName("-bad.example.com"))
        #expect(!ServerConfiguration.isDNSName("under_score.example.com"))
    }
}
