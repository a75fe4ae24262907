import Rooms
import SFU
import Testing

@Suite("Room events the media plane publishes for the studio")
struct RoomEventTests {
    @Test("simulcast-layers names the participant, the track's mid and each rid's state")
    func simulcastLayers() {
        let layers = SFU.PublisherLayers(broadcastID: "b", participantID: ParticipantID("8F0C"), mid: "1", send: ["h": false, "m": true, "l": true])
        #expect(RoomEvent.simulcastLayers(layers) == #"{"data":{"layers":{"h":false,"l":true,"m":true},"mid":"1","participant_id":"8F0C"},"event":"simulcast-layers"}"#)
    }

    @Test("active-speaker carries null when nobody speaks")
    func activeSpeaker() {
        #expect(RoomEvent.activeSpeaker(nil) == #"{"data":{"participant_id":null},"event":"active-speaker"}"#)
        #expect(RoomEvent.activeSpeaker(ParticipantID("A\"B")) == #"{"data":{"participant_id":"A\"B"},"event":"active-speaker"}"#)
    }
}
