import Foundation
import Rooms
import Store
import Testing

@Suite("Stage rules: people and ingest streams")
struct StageRulesTests {
    let host = UUID()
    var roles: [UUID: ParticipantRole] { [host: .host] }

    @Test("streams share the ten places with people and stand on stage once")
    func streamsCount() throws {
        try StageRules.validate(Stage(layout: "grid", participants: [host], streams: ["a", "b"]), layouts: ["grid"], participants: roles)
        let crowded = Stage(layout: "grid", participants: [host], streams: (1...10).map { "s\($0)" })
        #expect(throws: StageError.self) { try StageRules.validate(crowded, layouts: ["grid"], participants: roles) }
        let twice = Stage(layout: "grid", participants: [], streams: ["a", "a"])
        #expect { try StageRules.validate(twice, layouts: ["grid"], participants: roles) } throws: { ($0 as? StageError)?.code == "duplicate_stream" }
    }

    @Test("a stage stored before streams existed still reads")
    func oldStagesDecode() throws {
        let stored = #"{"layout":"grid","participants":["\#(host.uuidString)"],"banner":{"text":"Hi"}}"#
        let stage = try JSONDecoder().decode(Stage.self, from: Data(stored.utf8))
        #expect(stage.streams.isEmpty && stage.participants == [host] && stage.banner?.text == "Hi")
        let again = try JSONDecoder().decode(Stage.self, from: JSONEncoder().encode(Stage(layout: "solo", streams: ["cam"])))
        #expect(again.streams == ["cam"] && again.layout == "solo")
    }

    @Test("clips share the ten places, stand on stage once, and fill the frame only when there is one")
    func clips() throws {
        let intro = UUID()
        try StageRules.validate(Stage(layout: "grid", participants: [host], clips: [intro], clipFullscreen: true), layouts: ["grid"], participants: roles)
        let crowded = Stage(layout: "grid", participants: [host], streams: (1...5).map { "s\($0)" }, clips: (1...5).map { _ in UUID() })
        #expect { try StageRules.validate(crowded, layouts: ["grid"], participants: roles) } throws: { ($0 as? StageError)?.code == "stage_full" }
        let twice = Stage(layout: "grid", clips: [intro, intro])
        #expect { try StageRules.validate(twice, layouts: ["grid"], participants: roles) } throws: { ($0 as? StageError)?.code == "duplicate_clip" }
        let nothingToFill = Stage(layout: "grid", participants: [host], clipFullscreen: true)
        #expect { try StageRules.validate(nothingToFill, layouts: ["grid"], participants: roles) } throws: { ($0 as? StageError)?.code == "no_clip_to_fill" }
        // Stored and read back; a stage stored before clips existed has none.
        let stored = try JSONDecoder().decode(Stage.self, from: JSONEncoder().encode(Stage(layout: "solo", clips: [intro], clipFullscreen: true)))
        #expect(stored.clips == [intro] && stored.clipFullscreen)
        let old = try JSONDecoder().decode(Stage.self, from: Data(#"{"layout":"grid","participants":[]}"#.utf8))
        #expect(old.clips.isEmpty && !old.clipFullscreen)
    }

    @Test("the stage as room events carry it names clip_fullscreen as the API does")
    func stageBodyKeys() throws {
        let intro = UUID()
        let event = String(decoding: try JSONEncoder().encode(StageBody(Stage(layout: "grid", clips: [intro], clipFullscreen: true))), as: UTF8.self)
        #expect(event.contains(#""clip_fullscreen":true"#) && event.contains(intro.uuidString))
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let body = try decoder.decode(StageBody.self, from: Data(#"{"layout":"grid","participants":[],"clips":["\#(intro)"],"clip_fullscreen":true}"#.utf8))
        #expect(body.stage.clips == [intro] && body.stage.clipFullscreen)
    }
}
