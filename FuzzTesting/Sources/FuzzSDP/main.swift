import FuzzDriver
import SDP

/// Any text: parse never traps; what parses serializes into text that parses to the same
/// description; every accessor and the answerer stay total.
func fuzzSDP(_ bytes: [UInt8]) {
    guard let offer = try? SDPParser.parse(String(decoding: bytes, as: UTF8.self)) else { return }
    guard let again = try? SDPParser.parse(SDPParser.serialize(offer)) else { fatalError("serialized SDP does not parse") }
    precondition(again == offer, "SDP round trip changed the description")
    for section in offer.media {
        _ = (section.codecs, section.headerExtensions, section.ssrcs, section.retransmissionPairs, section.rids,
             section.simulcastSend, section.simulcastReceive, section.direction, offer.fingerprint(for: section))
    }
    let transport = LocalTransportParameters(iceUsernameFragment: "f", icePassword: "fuzzfuzzfuzzfuzzfuzzfuzz", fingerprintSHA256: "00", candidates: [])
    if let answer = try? SDPAnswerer.answer(to: offer, transport: transport, sessionID: "1", intent: { _ in MediaIntent(receive: true) }) {
        precondition((try? SDPParser.parse(answer.text)) != nil, "an answer does not parse")
    }
}

runFuzzer(fuzzSDP)
