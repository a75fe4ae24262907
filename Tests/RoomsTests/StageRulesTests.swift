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
}
