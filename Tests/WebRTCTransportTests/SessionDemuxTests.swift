import ICE
import MediaPlane
import STUN
import Testing
@testable import WebRTCTransport

@Suite("Session demux: which session a datagram belongs to")
struct SessionDemuxTests {
    private static let browser = ICEPath(.udp, TransportAddress(ip: [192, 0, 2, 7], port: 50_000))
    private static let other = ICEPath(.tcp, TransportAddress(ip: [192, 0, 2, 8], port: 50_001))

    private func check(username: String) -> [UInt8] {
        STUNCodec.encode(STUNMessage(type: .bindingRequest, transactionID: .random(), attributes: [.username(username), .priority(1)]),
                         integrityKey: Array("password".utf8), fingerprint: true)
    }

    @Test("a check names its session by the local fragment; other packets from an unknown path go nowhere")
    func checks() {
        var demux = SessionDemux()
        demux.register(fragment: "abcd", for: SessionID("one"))
        demux.register(fragment: "wxyz", for: SessionID("two"))
        #expect(demux.isTaken(fragment: "abcd") && !demux.isTaken(fragment: "efgh"))
        #expect(demux.match(check(username: "abcd:browser"), from: Self.browser) == .check(SessionID("one")))
        #expect(demux.match(check(username: "wxyz:browser"), from: Self.browser) == .check(SessionID("two")))
        #expect(demux.match(check(username: "efgh:browser"), from: Self.browser) == nil)
        #expect(demux.match(check(username: "no-colon"), from: Self.browser) == nil)
        // DTLS and SRTP from a path ICE has not validated are dropped unread.
        #expect(demux.match([22, 254, 253, 0, 0], from: Self.browser) == nil)
        #expect(demux.match([0x80, 96, 0, 1] + [UInt8](repeating: 0, count: 20), from: Self.browser) == nil)
        // A STUN-looking datagram that does not parse is nobody's.
        #expect(demux.match([0, 1, 0, 4, 0x21, 0x12, 0xA4, 0x42] + [UInt8](repeating: 0, count: 12), from: Self.browser) == nil)
    }

    @Test("a validated path carries anything to its session until it is forgotten or the session closes")
    func paths() {
        var demux = SessionDemux()
        demux.register(fragment: "abcd", for: SessionID("one"))
        demux.learn(Self.browser, for: SessionID("one"))
        demux.learn(Self.other, for: SessionID("one"))
        #expect(demux.match([0x80, 96, 0, 1], from: Self.browser) == .known(SessionID("one")))
        #expect(demux.session(on: Self.other) == SessionID("one"))
        #expect(demux.forget(Self.other) == SessionID("one") && demux.forget(Self.other) == nil)
        #expect(demux.match([0x80, 96, 0, 1], from: Self.other) == nil)
        demux.remove(fragment: "abcd", paths: [Self.browser])
        #expect(demux.match([0x80, 96, 0, 1], from: Self.browser) == nil)
        #expect(demux.match(check(username: "abcd:browser"), from: Self.browser) == nil && !demux.isTaken(fragment: "abcd"))
    }
}
