import Foundation
import Signaling
import Testing

@Suite("Signaling messages: the {event, data, id} envelope")
struct SignalMessageTests {
    @Test("a message parses with its id, and encodes back with sorted keys")
    func roundTrip() throws {
        let message = try SignalMessage.parse(#"{"event":"chat-message","data":{"text":"hi","n":2},"id":"7"}"#)
        #expect(message.event == "chat-message" && message.id == "7")
        #expect(try StudioRequest(message) == .chat(.init(text: "hi")))
        #expect(SignalMessage(event: "pong", payload: ["a": 1], id: "7").encoded() == #"{"data":{"a":1},"event":"pong","id":"7"}"#)
        #expect(try SignalMessage.parse(#"{"event":"ping","id":12}"#).id == "12")
        // 0 and 1 are numbers, not booleans, though Foundation on Linux says otherwise.
        #expect(try SignalMessage.parse(#"{"event":"ping","id":1}"#).id == "1")
        #expect(try SignalMessage.parse(#"{"event":"ping","id":0}"#).id == "0")
        #expect(try SignalMessage.parse(#"{"event":"ping"}"#).encoded() == #"{"data":{},"event":"ping"}"#)
    }

    @Test("malformed messages are clear errors that keep the id when there is one")
    func errors() {
        let cases: [(String, String)] = [
            ("not json", "invalid_json"),
            ("[1,2]", "invalid_json"),
            (#"{"data":{}}"#, "invalid_event"),
            (#"{"event":"","data":{}}"#, "invalid_event"),
            (#"{"event":"x","data":[1]}"#, "invalid_data"),
            (#"{"event":"x","id":{"a":1}}"#, "invalid_id"),
            (#"{"event":"x","id":true}"#, "invalid_id"),
        ]
        for (text, code) in cases {
            #expect(throws: SignalingError.self) { try SignalMessage.parse(text) }
            do {
                _ = try SignalMessage.parse(text)
            } catch {
                #expect(error.code == code, "\(text)")
            }
        }
        do {
            _ = try SignalMessage.parse(#"{"event":"x","data":[1],"id":"q"}"#)
        } catch {
            #expect(error.id == "q")
        }
        #expect(throws: SignalingError.tooLarge) { try SignalMessage.parse(String(repeating: " ", count: SignalMessage.maxBytes + 1)) }
    }

    @Test("fields are read with their types checked")
    func fields() throws {
        struct Fields: Decodable {
            var s: String
            var b: Bool?
            var n: Bool?
            var missing: Bool?
        }
        let message = try SignalMessage.parse(#"{"event":"x","data":{"s":"abc","b":true,"n":null,"k":5}}"#)
        struct Short: Decodable {
            var s: String
            var n: String?

            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                n = try container.optionalText(.n, max: 2)
                s = try container.text(.s, max: 2)
            }

            enum CodingKeys: CodingKey { case s, n }
        }
        let fields = try message.decode(Fields.self)
        #expect(fields.b == true && fields.n == nil && fields.missing == nil)
        struct Number: Decodable { var k: String }
        #expect(throws: SignalingError("invalid_field", "`data.k` must be a string")) { try message.decode(Number.self) }
        #expect(throws: SignalingError("invalid_field", "`data.s` is longer than 2 characters")) { try message.decode(Short.self) }
        let error = SignalMessage.error(SignalingError("host_only", "only the host", id: "9"))
        #expect(error.encoded() == #"{"data":{"code":"host_only","id":"9","message":"only the host"},"event":"error","id":"9"}"#)
    }
}

@Suite("Studio requests: each event's data typed, bounds checked, errors naming the field")
struct StudioRequestTests {
    private func request(_ text: String) throws(SignalingError) -> StudioRequest {
        try StudioRequest(try SignalMessage.parse(text))
    }

    private func refusal(_ text: String) -> SignalingError? {
        do {
            _ = try request(text)
            return nil
        } catch {
            return error
        }
    }

    @Test("join-broadcast takes a UUID, a name of at most 100 characters and a resume claim")
    func join() throws {
        let id = UUID()
        #expect(try request(#"{"event":"join-broadcast","data":{"broadcast_id":"\#(id)","name":"Ann"}}"#) == .join(.init(broadcastID: id, name: "Ann")))
        let resumed = try request(#"{"event":"join-broadcast","data":{"broadcast_id":"\#(id)","resume":{"participant_id":"p","token":7}}}"#)
        #expect(resumed == .join(.init(broadcastID: id, resume: .init(participantID: "p", token: nil))))
        #expect(try request(#"{"event":"join-broadcast","data":{"broadcast_id":"\#(id)","resume":"x"}}"#) == .join(.init(broadcastID: id)))
        #expect(refusal(#"{"event":"join-broadcast","data":{}}"#) == SignalingError("missing_field", "`data.broadcast_id` is missing"))
        #expect(refusal(#"{"event":"join-broadcast","data":{"broadcast_id":"nope"},"id":"3"}"#)
                == SignalingError("invalid_field", "`data.broadcast_id` must be a UUID", id: "3"))
        let longName = String(repeating: "n", count: 101)
        #expect(refusal(#"{"event":"join-broadcast","data":{"broadcast_id":"\#(id)","name":"\#(longName)"}}"#)?.code == "invalid_field")
        #expect(refusal(#"{"event":"join-broadcast","data":{"broadcast_id":5}}"#) == SignalingError("invalid_field", "`data.broadcast_id` must be a string"))
    }

    @Test("stage-set tells a field left alone from one cleared with null")
    func stage() throws {
        let id = UUID()
        guard case .setStage(let change) = try request(#"{"event":"stage-set","data":{"participants":["\#(id)"],"banner":null,"logo":"/uploads/a.png"}}"#) else {
            Issue.record("not a stage change")
            return
        }
        #expect(change.participants == [id] && change.layout == nil && change.streams == nil)
        #expect(change.banner == .clear && change.logo == .set("/uploads/a.png") && change.background == .keep)
        #expect(change.banner.applied(to: "old") == nil && change.background.applied(to: "kept") == "kept")
        guard case .setStage(let banner) = try request(#"{"event":"stage-set","data":{"banner":{"text":"Live"}}}"#) else { return }
        #expect(banner.banner == .set("Live"))
        #expect(refusal(#"{"event":"stage-set","data":{"participants":["x"]}}"#)?.message == "`data.participants` holds participant ids")
        #expect(refusal(#"{"event":"stage-set","data":{"participants":"x"}}"#)?.code == "invalid_field")
        #expect(refusal(#"{"event":"stage-set","data":{"streams":[""]}}"#)?.message == "`data.streams` holds ingest stream ids")
        #expect(refusal(#"{"event":"stage-set","data":{"banner":{"text":3}}}"#)?.code == "invalid_field")
        guard case .setStage(let shown) = try request(#"{"event":"stage-set","data":{"comment":{"name":"Gina","text":"Hello!"}}}"#),
              case .setStage(let hidden) = try request(#"{"event":"stage-set","data":{"comment":null}}"#) else { return }
        #expect(shown.comment == .set(.init(name: "Gina", text: "Hello!")) && shown.banner == .keep)
        #expect(hidden.comment == .clear && change.comment == .keep)
        #expect(refusal(#"{"event":"stage-set","data":{"comment":{"text":"no name"}}}"#)?.message.contains("`data.comment` is {\"name\"") == true)
        guard case .setStage(let clips) = try request(#"{"event":"stage-set","data":{"clips":["\#(id)"],"clip_fullscreen":true}}"#) else { return }
        #expect(clips.clips == [id] && clips.clipFullscreen == true && clips.participants == nil)
        #expect(refusal(#"{"event":"stage-set","data":{"clips":["intro"]}}"#)?.message == "`data.clips` holds clip ids")
        #expect(refusal(#"{"event":"stage-set","data":{"clip_fullscreen":"yes"}}"#)?.message == "`data.clip_fullscreen` is true or false")
        guard case .setStage(let themed) = try request(##"{"event":"stage-set","data":{"theme":{"accent":"#D000D0","banner":"shade"}}}"##),
              case .setStage(let standard) = try request(#"{"event":"stage-set","data":{"theme":null}}"#) else { return }
        #expect(themed.theme == .set(.init(accent: "#D000D0", banner: "shade")) && standard.theme == .clear && change.theme == .keep)
        #expect(refusal(#"{"event":"stage-set","data":{"theme":"dark"}}"#)?.message.contains("`data.theme` is {\"accent\"") == true)
        #expect(refusal(#"{"event":"stage-set","data":{"theme":{"font":"\#(String(repeating: "f", count: 17))"}}}"#)?.code == "invalid_field")
        guard case .setStage(let counting) = try request(#"{"event":"stage-set","data":{"countdown":{"label":"Soon","seconds":300}}}"#),
              case .setStage(let stopped) = try request(#"{"event":"stage-set","data":{"countdown":null}}"#) else { return }
        #expect(counting.countdown == .set(.init(label: "Soon", seconds: 300)) && stopped.countdown == .clear && change.countdown == .keep)
        #expect(refusal(#"{"event":"stage-set","data":{"countdown":{"label":"Soon"}}}"#)?.message.contains("`data.countdown` is {\"label\"") == true)
        let many = (0...StudioRequest.StageChange.maxListed).map { _ in "\"\(UUID())\"" }.joined(separator: ",")
        #expect(refusal(#"{"event":"stage-set","data":{"participants":[\#(many)]}}"#)?.code == "invalid_field")
    }

    @Test("chat, status, mute and offers read their fields; unknown events are refused")
    func others() throws {
        #expect(try request(#"{"event":"chat-message","data":{"text":"  hi  "}}"#) == .chat(.init(text: "hi")))
        #expect(refusal(#"{"event":"chat-message","data":{"text":"   "}}"#)?.message == "`data.text` needs some text")
        #expect(refusal(#"{"event":"chat-message","data":{"text":"\#(String(repeating: "x", count: 1001))"}}"#)?.message
                == "`data.text` is longer than 1000 characters")
        #expect(try request(#"{"event":"participant-status","data":{"audio_enabled":false}}"#) == .status(.init(audioEnabled: false)))
        #expect(refusal(#"{"event":"participant-status","data":{"audio_enabled":"no"}}"#)?.message == "`data.audio_enabled` must be true or false")
        #expect(try request(#"{"event":"mute-request","data":{"participant_id":"p"}}"#) == .mute(.init(participantID: "p", kind: .audio)))
        #expect(refusal(#"{"event":"mute-request","data":{"participant_id":"p","kind":"screen"}}"#)?.message == "`data.kind` is audio or video")
        #expect(try request(#"{"event":"webrtc-offer","data":{"sdp":"v=0","source":"screen"}}"#) == .offer(.init(sdp: "v=0", screen: true)))
        #expect(try request(#"{"event":"go-live"}"#) == .goLive)
        #expect(refusal(#"{"event":"dance","id":"1"}"#) == SignalingError("unknown_event", "no such event: dance", id: "1"))
    }
}

@Suite("Per-connection rate limit")
struct MessageRateLimiterTests {
    @Test("a burst passes, the excess is refused, a steady pace is fine, and abuse disconnects")
    func bucket() {
        var limiter = MessageRateLimiter(perSecond: 10, burst: 5, strikes: 3)
        for _ in 0..<5 { #expect(limiter.admit(now: .zero) == .allow) }
        #expect(limiter.admit(now: .zero) == .refuse)
        #expect(limiter.admit(now: .milliseconds(100)) == .allow)
        for step in 1...20 { #expect(limiter.admit(now: .milliseconds(100 + 100 * step)) == .allow) }
        #expect(limiter.admit(now: .milliseconds(2100)) == .refuse)
        #expect(limiter.admit(now: .milliseconds(2100)) == .refuse)
        #expect(limiter.admit(now: .milliseconds(2100)) == .disconnect)
    }
}
