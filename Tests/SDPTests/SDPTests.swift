import Foundation
import SDP
import Testing

enum Fixture {
    static func offer(_ name: String) throws -> SessionDescription {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "sdp", subdirectory: "Fixtures"))
        return try SDPParser.parse(String(contentsOf: url, encoding: .utf8))
    }

    static let transport = LocalTransportParameters(
        iceUsernameFragment: "tly1", icePassword: "0123456789abcdefghijklmn",
        fingerprintSHA256: "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99",
        candidates: ["1 1 udp 2130706431 127.0.0.1 7882 typ host", "2 1 tcp 1518280447 127.0.0.1 7881 typ host tcptype passive"])

    static func stream(_ kind: String) -> LocalStream {
        LocalStream(ssrc: kind == "audio" ? 1111 : 2222, rtxSSRC: kind == "audio" ? nil : 3333, cname: "tally", streamID: "echo", trackID: kind)
    }
}

@Suite("SDP: parsing real browser offers")
struct SDPParsingTests {
    @Test("every fixture parses, and serializing then parsing gives the same description", arguments: [
        "chrome-sendrecv", "chrome-simulcast-sendonly", "firefox-sendrecv", "safari-sendonly",
    ])
    func roundTrip(name: String) throws {
        let offer = try Fixture.offer(name)
        #expect(offer.media.map(\.kind) == ["audio", "video"])
        #expect(offer.bundleGroup == ["0", "1"])
        #expect(try SDPParser.parse(SDPParser.serialize(offer)) == offer)
        for section in offer.media {
            #expect(offer.value("ice-ufrag", in: section) != nil)
            #expect(offer.fingerprint(for: section)?.algorithm == "sha-256")
        }
    }

    @Test("Chrome's offer: codecs with fmtp and feedback, RTX pairing, extensions, SSRCs")
    func chrome() throws {
        let video = try Fixture.offer("chrome-sendrecv").media[1]
        let vp8 = try #require(video.codecs.first)
        #expect(vp8.name == "VP8" && vp8.payloadType == 96 && vp8.clockRate == 90000)
        #expect(vp8.feedback == ["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"])
        #expect(video.codecs.first { $0.parameter("apt") == "96" }?.payloadType == 97)
        let h264 = video.codecs.filter { $0.name == "H264" }
        #expect(h264.contains { $0.parameter("profile-level-id") == "42e01f" && $0.parameter("packetization-mode") == "1" })
        #expect(video.headerExtensions.contains { $0.uri == "urn:ietf:params:rtp-hdrext:sdes:mid" })
        #expect(video.direction == .sendrecv)
        let audio = try Fixture.offer("chrome-sendrecv").media[0]
        #expect(audio.codecs.first?.name == "opus" && audio.codecs.first?.channels == 2)
        #expect(audio.ssrcs.first?.cname != nil)
    }

    @Test("simulcast: rids and the send list")
    func simulcast() throws {
        let video = try Fixture.offer("chrome-simulcast-sendonly").media[1]
        #expect(video.rids.map(\.id) == ["h", "m", "l"])
        #expect(video.simulcastSend == ["h", "m", "l"])
        #expect(video.direction == .sendonly)
    }

    @Test("Firefox: session-level fingerprint, extmap directions, FID groups")
    func firefox() throws {
        let offer = try Fixture.offer("firefox-sendrecv")
        let video = offer.media[1]
        #expect(video.attribute("fingerprint") == nil && offer.fingerprint(for: video) != nil)
        #expect(video.headerExtensions.contains { $0.id == 6 && $0.uri.hasSuffix("playout-delay") })
        #expect(video.retransmissionPairs.first?.media == 1_509_203_117 && video.retransmissionPairs.first?.rtx == 3_917_450_280)
        #expect(video.codecs.first?.parameter("max-fs") == "12288")
    }

    @Test("malformed SDP is a clear error", arguments: [
        ("o=- 1 1 IN IP4 0.0.0.0\r\n", SDPError.missing("v=0 line")),
        ("v=0\r\ns=-\r\n", .missing("o= line")),
        ("v=0\r\no=- 1\r\n", .malformedLine(number: 2, reason: "o= needs 6 fields")),
        ("v=0\r\nhello\r\n", .malformedLine(number: 2, reason: "expected <type>=<value>")),
        ("v=1\r\n", .malformedLine(number: 1, reason: "unsupported version 1")),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=video x RTP\r\n", .malformedLine(number: 3, reason: "m= needs media, port and protocol")),
    ])
    func malformed(text: String, error: SDPError) {
        #expect(throws: error) { try SDPParser.parse(text) }
    }

    @Test("an oversized description is refused before parsing")
    func tooLarge() {
        let text = "v=0\r\n" + String(repeating: "a=x\r\n", count: 60_000)
        #expect(throws: SDPError.tooLarge(text.utf8.count)) { try SDPParser.parse(text) }
    }
}

@Suite("SDP: answers")
struct SDPAnswerTests {
    @Test("echo: both directions, Opus and VP8 with RTX, our SSRCs, ICE-lite, passive DTLS")
    func echo() throws {
        let answer = try SDPAnswerer.answer(to: Fixture.offer("chrome-sendrecv"), transport: Fixture.transport, sessionID: "42") { section in
            MediaIntent(receive: true, send: Fixture.stream(section.kind))
        }
        #expect(answer.media.map(\.direction) == [.sendrecv, .sendrecv])
        #expect(answer.media.map(\.codec.name) == ["opus", "VP8"])
        #expect(answer.media[1].retransmission?.payloadType == 97)
        #expect(answer.dtlsClient == false)
        #expect(answer.remoteIceUsernameFragment.isEmpty == false)
        let text = answer.text
        #expect(text.contains("a=ice-lite\r\n") && text.contains("a=group:BUNDLE 0 1\r\n") && text.contains("a=setup:passive\r\n"))
        #expect(text.contains("a=ssrc-group:FID 2222 3333\r\n") && text.contains("a=ssrc:1111 cname:tally\r\n"))
        #expect(text.contains("a=candidate:2 1 tcp 1518280447 127.0.0.1 7881 typ host tcptype passive\r\n"))
        #expect(!text.contains("G722") && !text.contains("ulpfec"))
        let reparsed = try SDPParser.parse(text)
        #expect(reparsed.media[1].codecs.map(\.payloadType) == [96, 97])
        #expect(reparsed.media[1].codecs[0].feedback == ["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"])
        #expect(reparsed.media[0].headerExtensions.map(\.uri).contains("urn:ietf:params:rtp-hdrext:ssrc-audio-level"))
        #expect(!reparsed.media[1].headerExtensions.map(\.uri).contains("urn:3gpp:video-orientation"))
    }

    @Test("WHIP with simulcast: receive only, the three rids accepted as recv")
    func whipSimulcast() throws {
        let answer = try SDPAnswerer.answer(to: Fixture.offer("chrome-simulcast-sendonly"), transport: Fixture.transport, sessionID: "7") { _ in
            MediaIntent(receive: true)
        }
        #expect(answer.media.map(\.direction) == [.recvonly, .recvonly])
        #expect(answer.media[1].remoteRIDs == ["h", "m", "l"])
        let video = try SDPParser.parse(answer.text).media[1]
        #expect(video.rids.map(\.direction) == ["recv", "recv", "recv"])
        #expect(video.simulcastReceive == ["h", "m", "l"])
        #expect(!answer.text.contains("a=ssrc:"))
    }

    @Test("Firefox: the session-level fingerprint is found and VP8 chosen over its other codecs")
    func firefox() throws {
        let answer = try SDPAnswerer.answer(to: Fixture.offer("firefox-sendrecv"), transport: Fixture.transport, sessionID: "9") { _ in
            MediaIntent(receive: true)
        }
        #expect(answer.remoteFingerprint.value.hasPrefix("5E:41"))
        #expect(answer.media[1].codec.payloadType == 120 && answer.media[1].retransmission?.payloadType == 124)
        #expect(answer.media[1].remoteRetransmissionPairs == [.init(media: 1_509_203_117, rtx: 3_917_450_280)])
        #expect(answer.media.map(\.direction) == [.recvonly, .recvonly])
    }

    @Test("Safari with an H.264-only policy picks constrained high, packetization mode 1")
    func safariH264() throws {
        let policy = CodecPolicy(audio: [.opus], video: [.h264], feedback: CodecPolicy.standard.feedback, headerExtensions: CodecPolicy.standard.headerExtensions)
        let answer = try SDPAnswerer.answer(to: Fixture.offer("safari-sendonly"), transport: Fixture.transport, policy: policy, sessionID: "3") { _ in
            MediaIntent(receive: true)
        }
        #expect(answer.media[1].codec.parameter("profile-level-id") == "640c1f")
        #expect(answer.media[1].retransmission?.parameter("apt") == "96")
        #expect(answer.media[1].remoteSSRCs.map(\.ssrc) == [2_468_013_579, 1_357_924_680])
    }

    @Test("a section with no common codec is rejected with port 0 and left out of BUNDLE")
    func rejectUnsupported() throws {
        let policy = CodecPolicy(audio: [.opus], video: [CodecPolicy.Matcher(name: "MP4V-ES", clockRate: 90000)],
                                 feedback: [], headerExtensions: [])
        let answer = try SDPAnswerer.answer(to: Fixture.offer("chrome-sendrecv"), transport: Fixture.transport, policy: policy, sessionID: "1") { _ in
            MediaIntent(receive: true)
        }
        #expect(answer.description.media[1].port == 0)
        #expect(answer.description.bundleGroup == ["0"])
        #expect(answer.media.count == 1)
    }

    @Test("offers Tally cannot serve are refused with the reason")
    func refusals() throws {
        var offer = try Fixture.offer("chrome-sendrecv")
        offer.attributes.removeAll { $0.name == "group" }
        #expect(throws: SDPError.self) { try SDPAnswerer.answer(to: offer, transport: Fixture.transport, sessionID: "1") { _ in MediaIntent(receive: true) } }
        var noICE = try Fixture.offer("chrome-sendrecv")
        for index in noICE.media.indices { noICE.media[index].attributes.removeAll { $0.name == "ice-pwd" } }
        #expect(throws: SDPError.missing("a=ice-ufrag and a=ice-pwd")) {
            try SDPAnswerer.answer(to: noICE, transport: Fixture.transport, sessionID: "1") { _ in MediaIntent(receive: true) }
        }
    }

    @Test("an offer with a=setup:passive makes Tally the DTLS client")
    func activeRole() throws {
        var offer = try Fixture.offer("chrome-sendrecv")
        for index in offer.media.indices {
            offer.media[index].attributes = offer.media[index].attributes.map { $0.name == "setup" ? SDPAttribute("setup", "passive") : $0 }
        }
        let answer = try SDPAnswerer.answer(to: offer, transport: Fixture.transport, sessionID: "1") { _ in MediaIntent(receive: true) }
        #expect(answer.dtlsClient && answer.text.contains("a=setup:active"))
    }
}

@Suite("SDP: inputs the fuzzer found")
struct SDPRegressionTests {
    static let failCases = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("FuzzTesting/FailCases/SDP")

    @Test("every committed crash input is refused, or round-trips and yields an answer that parses")
    func failCases() throws {
        let files = try FileManager.default.contentsOfDirectory(at: Self.failCases, includingPropertiesForKeys: nil)
        #expect(!files.isEmpty)
        for file in files {
            let text = String(decoding: try Data(contentsOf: file), as: UTF8.self)
            guard let parsed = try? SDPParser.parse(text) else { continue }
            #expect(try SDPParser.parse(SDPParser.serialize(parsed)) == parsed, "\(file.lastPathComponent)")
            for section in parsed.media {
                _ = (section.codecs, section.headerExtensions, section.ssrcs, section.rids, section.simulcastSend)
            }
            if let answer = try? SDPAnswerer.answer(to: parsed, transport: Fixture.transport, sessionID: "1", intent: { _ in MediaIntent(receive: true) }) {
                #expect(throws: Never.self, "\(file.lastPathComponent): the answer does not parse") { try SDPParser.parse(answer.text) }
            }
        }
    }

    @Test("attributes with empty or odd values read as absent, never trap")
    func emptyValues() throws {
        let parsed = try SDPParser.parse("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=video 9 RTP/AVP 96\r\na=ssrc:\r\na=ssrc: \r\na=ssrc:5 :\r\na=extmap:/ urn:x\r\na=extmap:/1 urn:y\r\n")
        let section = try #require(parsed.media.first)
        #expect(section.ssrcs == [SSRCDescription(ssrc: 5)])
        #expect(section.headerExtensions.isEmpty)
    }

    @Test("a bare CR ends a line like CRLF does")
    func bareCarriageReturn() throws {
        let parsed = try SDPParser.parse("v=0\ro=- 1 1 IN IP4 0.0.0.0\r\nm=video 9 RTP/AVP 96\rc=IN IP4 0.0.0.0\n")
        #expect(parsed.media.first?.formats == ["96"] && parsed.media.first?.connection == "IN IP4 0.0.0.0")
        // What follows a bare CR is a line of its own, and a lone space is not a line.
        #expect(throws: SDPError.malformedLine(number: 4, reason: "expected <type>=<value>")) {
            try SDPParser.parse("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=video 9 RTP/AVP 96\r \n")
        }
    }
}
