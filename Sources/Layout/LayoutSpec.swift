import Foundation

/// One layout from `layouts/*.json`: regions of the canvas, filled in order with the stage's
/// participants. The browser reads the same files and places tiles with the same arithmetic
/// (`web/js/layout.js`); `layouts/README.md` documents the format.
public struct LayoutSpec: Codable, Sendable, Equatable {
    public var name: String
    public var title: String
    public var description: String
    /// Participants beyond this many are not shown.
    public var maxParticipants: Int
    /// Space between tiles, as a fraction of the canvas width.
    public var gap: Double
    public var regions: [Region]

    public struct Region: Codable, Sendable, Equatable {
        /// x, y, width, height as fractions of the canvas.
        public var rect: [Double]
        /// Used instead of `rect` when no later region has anyone in it.
        public var rectWhenAlone: [Double]?
        public var take: Take
        public var arrange: Arrangement
        /// Tile width over height; 16:9 when absent.
        public var aspect: Double?
        /// How a picture fills its tile: cropped to cover it, or letterboxed inside it.
        public var fit: Fit?

        enum CodingKeys: String, CodingKey {
            case rect, take, arrange, aspect, fit
            case rectWhenAlone = "rect_when_alone"
        }
    }

    /// How many participants a region takes: a count, or all that are left.
    public enum Take: Codable, Sendable, Equatable {
        case count(Int)
        case rest

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let count = try? container.decode(Int.self) {
                self = .count(count)
            } else if try container.decode(String.self) == "rest" {
                self = .rest
            } else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "take is a count or \"rest\"")
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .count(let count): try container.encode(count)
            case .rest: try container.encode("rest")
            }
        }
    }

    public enum Arrangement: String, Codable, Sendable {
        /// Rows and columns, whichever makes the tiles largest.
        case grid
        /// One row.
        case row
        /// One column.
        case column
    }

    public enum Fit: String, Codable, Sendable {
        case cover, contain
    }

    enum CodingKeys: String, CodingKey {
        case name, title, description, gap, regions
        case maxParticipants = "max_participants"
    }
}

/// Where one participant's picture goes on a canvas of whole pixels; higher `z` is drawn later.
public struct Placement: Codable, Sendable, Equatable {
    public var participant: String
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int
    public var z: Int
    public var fit: LayoutSpec.Fit

    public init(participant: String, x: Int, y: Int, width: Int, height: Int, z: Int, fit: LayoutSpec.Fit) {
        self.participant = participant
        self.x = x
        self.y = y
        self.width = width
        self.height = height
        self.z = z
        self.fit = fit
    }
}

public struct LayoutError: Error, CustomStringConvertible, Equatable {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension LayoutSpec {
    public static let defaultAspect = 16.0 / 9.0

    /// Checks what decoding cannot: rectangles inside the canvas, counts that make sense.
    public func validate() throws(LayoutError) {
        guard name.range(of: "^[a-z0-9-]{1,40}$", options: .regularExpression) != nil else {
            throw LayoutError("layout name \"\(name)\" must be 1-40 of a-z, 0-9 and -")
        }
        guard (1...10).contains(maxParticipants) else { throw LayoutError("\(name): max_participants must be 1 to 10") }
        guard (0..<0.25).contains(gap) else { throw LayoutError("\(name): gap must be a fraction from 0 to 0.25") }
        guard !regions.isEmpty else { throw LayoutError("\(name): needs at least one region") }
        for (index, region) in regions.enumerated() {
            for rect in [region.rect] + (region.rectWhenAlone.map { [$0] } ?? []) {
                guard rect.count == 4, rect.allSatisfy({ (0...1).contains($0) }), rect[2] > 0, rect[3] > 0,
                      rect[0] + rect[2] <= 1.000001, rect[1] + rect[3] <= 1.000001 else {
                    throw LayoutError("\(name): region \(index + 1) needs a rect [x, y, width, height] of fractions inside the canvas")
                }
            }
            if case .count(let count) = region.take, count < 1 { throw LayoutError("\(name): region \(index + 1) must take at least 1") }
            if let aspect = region.aspect, !(0.2...5).contains(aspect) { throw LayoutError("\(name): region \(index + 1) aspect must be 0.2 to 5") }
        }
    }

    /// The tiles of `participants` (in stage order: the first is featured) on a canvas of
    /// `width` × `height` pixels.
    ///
    /// The browser's `placeParticipants` repeats these steps operation for operation, so both
    /// round to the same pixels; keep them in step (the golden test checks both).
    public func place(_ participants: [String], width: Int, height: Int) -> [Placement] {
        let canvasWidth = Double(width), canvasHeight = Double(height)
        var remaining = Array(participants.prefix(maxParticipants))
        var groups: [[String]] = []
        for region in regions {
            let count: Int
            switch region.take {
            case .count(let wanted): count = min(wanted, remaining.count)
            case .rest: count = remaining.count
            }
            groups.append(Array(remaining.prefix(count)))
            remaining.removeFirst(count)
        }
        var placements: [Placement] = []
        for (index, region) in regions.enumerated() where !groups[index].isEmpty {
            let alone = groups[(index + 1)...].allSatisfy(\.isEmpty)
            let rect = alone ? (region.rectWhenAlone ?? region.rect) : region.rect
            let tiles = Self.arrange(count: groups[index].count, arrangement: region.arrange,
                                     x: rect[0] * canvasWidth, y: rect[1] * canvasHeight, width: rect[2] * canvasWidth, height: rect[3] * canvasHeight,
                                     gap: gap * canvasWidth, aspect: region.aspect ?? Self.defaultAspect)
            for (participant, tile) in zip(groups[index], tiles) {
                let left = tile.x.rounded(), top = tile.y.rounded()
                placements.append(Placement(participant: participant, x: Int(left), y: Int(top),
                                            width: Int((tile.x + tile.width).rounded() - left), height: Int((tile.y + tile.height).rounded() - top),
                                            z: index, fit: region.fit ?? .cover))
            }
        }
        return placements
    }

    /// Tiles of one aspect, as large as fit: the column count that gives the widest tile
    /// (fewest columns on a tie), the grid centred, a short last row centred.
    static func arrange(count: Int, arrangement: Arrangement, x: Double, y: Double, width: Double, height: Double,
                        gap: Double, aspect: Double) -> [(x: Double, y: Double, width: Double, height: Double)] {
        guard count > 0 else { return [] }
        let candidates: [Int] = switch arrangement {
        case .grid: Array(1...count)
        case .row: [count]
        case .column: [1]
        }
        var columns = candidates[0]
        var tileWidth = -1.0
        for candidate in candidates {
            let rows = (count + candidate - 1) / candidate
            let widthLimit = (width - Double(candidate - 1) * gap) / Double(candidate)
            let heightLimit = (height - Double(rows - 1) * gap) / Double(rows) * aspect
            let fitted = min(widthLimit, heightLimit)
            if fitted > tileWidth {
                tileWidth = fitted
                columns = candidate
            }
        }
        let rows = (count + columns - 1) / columns
        let tileHeight = tileWidth / aspect
        let gridHeight = Double(rows) * tileHeight + Double(rows - 1) * gap
        let top = y + (height - gridHeight) / 2
        var tiles: [(x: Double, y: Double, width: Double, height: Double)] = []
        for row in 0..<rows {
            let inRow = row == rows - 1 ? count - columns * (rows - 1) : columns
            let rowWidth = Double(inRow) * tileWidth + Double(inRow - 1) * gap
            let left = x + (width - rowWidth) / 2
            for column in 0..<inRow {
                tiles.append((left + Double(column) * (tileWidth + gap), top + Double(row) * (tileHeight + gap), tileWidth, tileHeight))
            }
        }
        return tiles
    }
}
