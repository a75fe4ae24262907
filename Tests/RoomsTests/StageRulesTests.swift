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

    @Test("a theme names a #rrggbb accent, a font and styles the server has; a stage stored without one wears the standard")
    func themes() throws {
        let branded = Stage(layout: "grid", theme: Stage.Theme(accent: "#d000d0", font: "serif", nametags: "accent", banner: "light"))
        try StageRules.validate(branded, layouts: ["grid"], participants: roles)
        for (theme, problem) in [(Stage.Theme(accent: "red"), "accent"), (Stage.Theme(accent: "#12345g"), "accent"), (Stage.Theme(accent: "#+12345"), "accent"),
                                 (Stage.Theme(font: "comic"), "font"), (Stage.Theme(nametags: "neon"), "nametags"), (Stage.Theme(banner: "../x"), "banner")] {
            #expect { try StageRules.validate(Stage(layout: "grid", theme: theme), layouts: ["grid"], participants: roles) } throws: {
                ($0 as? StageError)?.code == "invalid_theme" && ($0 as? StageError)?.description.contains(problem) == true
            }
        }
        let stored = try JSONDecoder().decode(Stage.self, from: Data(#"{"layout":"grid","participants":[]}"#.utf8))
        #expect(stored.theme == .standard && stored.countdown == nil)
        let partial = try JSONDecoder().decode(Stage.Theme.self, from: Data(##"{"accent":"#ABCDEF"}"##.utf8))
        #expect(partial == Stage.Theme(accent: "#abcdef") && partial.rgb.map { [$0.red, $0.green, $0.blue] } == [171, 205, 239])
        let again = try JSONDecoder().decode(Stage.self, from: JSONEncoder().encode(branded))
        #expect(again.theme == branded.theme)
    }

    @Test("a countdown has a label and ends within the hour; any number of seconds sent is safe and only 1 to 3600 is taken")
    func countdowns() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let fiveMinutes = Stage.Countdown(label: "Starting soon", seconds: 300, from: now)
        #expect(fiveMinutes.until == 1_800_000_300_000)
        try StageRules.validate(Stage(layout: "grid", countdown: fiveMinutes), layouts: ["grid"], participants: roles, now: now)
        for countdown in [Stage.Countdown(label: "Later", seconds: 3601 + 10, from: now), Stage.Countdown(label: "Huge", seconds: .max, from: now),
                          Stage.Countdown(label: "Negative", seconds: .min, from: now), Stage.Countdown(label: "Zero", seconds: 0, from: now),
                          Stage.Countdown(label: "   ", seconds: 60, from: now), Stage.Countdown(label: "Never", until: 0),
                          Stage.Countdown(label: String(repeating: "x", count: 81), seconds: 60, from: now)] {
            #expect { try StageRules.validate(Stage(layout: "grid", countdown: countdown), layouts: ["grid"], participants: roles, now: now) } throws: {
                ($0 as? StageError)?.code == "invalid_countdown"
            }
        }
        // One already over stays on at 0:00 until the host takes it off.
        try StageRules.validate(Stage(layout: "grid", countdown: Stage.Countdown(label: "Now", until: 1_799_999_995_000)), layouts: ["grid"], participants: roles, now: now)
    }
}
