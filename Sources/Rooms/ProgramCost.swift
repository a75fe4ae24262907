/// What one live program costs this node, learned from the process's own CPU rather than
/// guessed: with no program running, the process's use is its baseline; with n running,
/// each costs (use − baseline) / n. Both are smoothed, so one busy moment (a keyframe
/// storm, a garbage-heavy request) moves them only a little. A sample whose interval saw
/// the program count change (a start, an end) teaches nothing: it mixes two loads.
public struct ProgramCost: Sendable, Equatable {
    /// The process's CPU with no program, in cores.
    public private(set) var baseline: Double = 0
    /// One program's CPU, in cores: the assumed figure until a program has run here.
    public private(set) var perProgram: Double
    public private(set) var measured = false
    /// The process's CPU at the last sample, in cores.
    public private(set) var current: Double = 0
    private var baselineSeen = false
    /// The program count at the previous sample.
    private var programsBefore: Int?
    private static let weight = 0.25

    /// `assumed`: the cost before anything is measured (docs/benchmarks.md: a 720p30 grid of
    /// four guests with recording and HLS takes about 0.36 of a core).
    public init(assumed: Double = 0.36) {
        perProgram = assumed
    }

    public mutating func record(cores: Double, programs: Int) {
        current = cores
        defer { programsBefore = programs }
        guard programsBefore == programs else { return }
        guard programs > 0 else {
            baseline = baselineSeen ? baseline + Self.weight * (cores - baseline) : cores
            baselineSeen = true
            return
        }
        let each = max(0, cores - baseline) / Double(programs)
        perProgram = measured ? perProgram + Self.weight * (each - perProgram) : each
        measured = true
    }

    /// Whether one more program fits under `budget` cores on top of the `running` ones
    /// (those just started count at their cost before a sample shows them).
    public func admits(budget: Double, running: Int) -> Bool {
        max(current, baseline + Double(running) * perProgram) + perProgram <= budget
    }
}
