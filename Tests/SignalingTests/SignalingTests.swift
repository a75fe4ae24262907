import Foundation
import Signaling
import Testing

@Suite("Signaling messages: the {event, data, id} envelope")
struct SignalMessageTests {
    @Test("a message parses with its id, and encodes back with sorted keys")
    func roundTrip() throws {
        let message = try SignalMessage.parse(#"{"event":"chat-message","data":{"text":"hi","n":2},"id":"7"}"#)
        #expect(message.event == "chat-message" && message.id == "7")
        #expect(try message.string("text") == "hi")
        #expect(SignalMessage(event: "pong", data: ["a": 1], id: "7").encoded() == #"{"data":{"a":1},"event":"pong","id":"7"}"#)
        #expect(try SignalMessage.parse(#"{"event":"ping","id":12}"#).id == "12")
        // 0 and 1 are numbers, not booleans, though Foundation on Linux says otherwise.
        #expect(try SignalMessage.parse(#"{"event":"ping","id":1}"#).id == "1")
        #expect(try SignalMessage.parse(#"{"event":"ping","id":0}"#).id == "0")
        #expect(try SignalMessage.parse(#"{"event":"ping"}"#).data.isEmpty)
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
        let message = try SignalMessage.parse(#"{"event":"x","data":{"s":"abc","b":true,"n":null,"k":5}}"#)
        #expect(try message.bool("b") == true && message.bool("n") == nil && message.bool("missing") == nil)
        #expect(try message.optionalString("n") == nil)
        #expect(throws: SignalingError.self) { try message.string("k") }
        #expect(throws: SignalingError.self) { try message.string("s", max: 2) }
        let error = SignalMessage.error(SignalingError("host_only", "only the host", id: "9"))
        #expect(error.encoded() == #"{"data":{"code":"host_only","id":"9","message":"only the host"},"event":"error","id":"9"}"#)
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
