import Foundation
import Testing
@testable import Layout

/// The repository's own layouts/ folder, which the server and the browser both read.
let layoutsFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("layouts")

/// One stage on one canvas and the tiles it must produce, in Swift and in the browser alike.
struct GoldenCase: Codable, Equatable {
    var layout: String
    var participants: [String]
    var width: Int
    var height: Int
    var placements: [Placement]
}

@Suite("Layouts: the specs in layouts/ and the placements they make")
struct LayoutTests {
    let library: LayoutLibrary

    init() throws {
        library = try LayoutLibrary(directory: layoutsFolder)
    }

    @Test("the five layouts load and validate")
    func loads() {
        #expect(library.layouts.map(\.name).sorted() == ["grid", "pip", "sidebar", "solo", "spotlight"])
    }

    @Test("grid: one fills the frame at 16:9, four make two by two, nobody overlaps, all inside")
    func grid() throws {
        let grid = try #require(library.layout(named: "grid"))
        let one = grid.place(["a"], width: 1280, height: 720)
        #expect(one.count == 1 && one[0].width >= 1200 && abs(Double(one[0].width) / Double(one[0].height) - 16 / 9) < 0.01)
        let four = grid.place(["a", "b", "c", "d"], width: 1280, height: 720)
        #expect(Set(four.map(\.x)).count == 2 && Set(four.map(\.y)).count == 2)
        for count in 1...12 {
            let tiles = grid.place((0..<count).map { "p\($0)" }, width: 1280, height: 720)
            #expect(tiles.count == min(count, 10))
            for tile in tiles { #expect(tile.x >= 0 && tile.y >= 0 && tile.x + tile.width <= 1280 && tile.y + tile.height <= 720) }
            for (index, first) in tiles.enumerated() {
                for second in tiles[(index + 1)...] {
                    let apart = first.x + first.width <= second.x || second.x + second.width <= first.x
                        || first.y + first.height <= second.y || second.y + second.height <= first.y
                    #expect(apart, "\(first) overlaps \(second) with \(count) on stage")
                }
            }
        }
    }

    @Test("the featured participant is the first on stage; others share the strip; alone, it fills the frame")
    func featured() throws {
        let sidebar = try #require(library.layout(named: "sidebar"))
        let three = sidebar.place(["host", "guest1", "guest2"], width: 1280, height: 720)
        #expect(three[0].participant == "host" && three[0].width > 3 * three[1].width)
        #expect(three[1].x == three[2].x && three[1].y < three[2].y)
        let alone = sidebar.place(["host"], width: 1280, height: 720)
        #expect(alone[0].width > three[0].width)
        let pip = try #require(library.layout(named: "pip"))
        let inset = pip.place(["a", "b", "c"], width: 1280, height: 720)
        #expect(inset.count == 2 && inset[0] == Placement(participant: "a", x: 0, y: 0, width: 1280, height: 720, z: 0, fit: .cover))
        #expect(inset[1].z == 1 && inset[1].x > 640 && inset[1].y > 360)
        let solo = try #require(library.layout(named: "solo"))
        #expect(solo.place(["a", "b"], width: 1280, height: 720).map(\.participant) == ["a"])
        #expect(solo.place([], width: 1280, height: 720).isEmpty)
    }

    @Test("broken specs are refused with the file and the reason")
    func validation() throws {
        var spec = try #require(library.layout(named: "grid"))
        spec.regions[0].rect = [0.5, 0, 0.6, 1]
        #expect(throws: LayoutError.self) { try LayoutLibrary(layouts: [spec]) }
        spec = try #require(library.layout(named: "grid"))
        spec.name = "Grid!"
        #expect(throws: LayoutError("layout name \"Grid!\" must be 1-40 of a-z, 0-9 and -")) { try spec.validate() }
        let grid = try #require(library.layout(named: "grid"))
        #expect(throws: LayoutError("two layouts are named grid")) { try LayoutLibrary(layouts: [grid, grid]) }
        let bad = Data(#"{"name":"x","title":"x","description":"x","max_participants":2,"gap":0,"regions":[{"rect":[0,0,1,1],"take":"all","arrange":"grid"}]}"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(LayoutSpec.self, from: bad) }
    }

    /// The cases the browser test (Tests/e2e/test_layout_golden.py) checks too.
    static func goldenCases(_ library: LayoutLibrary) -> [GoldenCase] {
        var cases: [GoldenCase] = []
        for layout in library.layouts {
            for (width, height) in [(1280, 720), (1920, 1080), (390, 219)] {
                for count in 0...(layout.maxParticipants + 1) {
                    let participants = (0..<count).map { "p\($0 + 1)" }
                    cases.append(GoldenCase(layout: layout.name, participants: participants, width: width, height: height,
                                            placements: layout.place(participants, width: width, height: height)))
                }
            }
        }
        return cases
    }

    @Test("the golden placements hold (TALLY_UPDATE_GOLDEN=1 rewrites them after a deliberate change)")
    func golden() throws {
        let file = try #require(Bundle.module.url(forResource: "Fixtures/golden", withExtension: "json"))
        let cases = Self.goldenCases(library)
        if ProcessInfo.processInfo.environment["TALLY_UPDATE_GOLDEN"] == "1" {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/golden.json")
            try (encoder.encode(cases) + Data("\n".utf8)).write(to: source)
        }
        let golden = try JSONDecoder().decode([GoldenCase].self, from: Data(contentsOf: file))
        #expect(golden.count == cases.count)
        for (expected, actual) in zip(golden, cases) { #expect(expected == actual) }
    }
}
