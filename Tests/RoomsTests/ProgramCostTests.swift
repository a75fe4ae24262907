import Rooms
import Testing

@Suite("A program's CPU cost, measured")
struct ProgramCostTests {
    @Test("the assumed cost stands until a program has run; then the measured one, above the idle baseline")
    func learnsFromSamples() {
        var cost = ProgramCost(assumed: 0.36)
        cost.record(cores: 0.05, programs: 0)
        cost.record(cores: 0.05, programs: 0)
        #expect(!cost.measured && cost.perProgram == 0.36 && cost.baseline == 0.05)
        cost.record(cores: 0.3, programs: 2)
        cost.record(cores: 0.45, programs: 2)
        #expect(cost.measured)
        #expect(abs(cost.perProgram - 0.2) < 1e-9)
        // One busy sample (0.6 each) moves the figure only a quarter of the way there.
        cost.record(cores: 1.25, programs: 2)
        #expect(abs(cost.perProgram - 0.3) < 1e-9)
        #expect(cost.current == 1.25)
    }

    @Test("a program is admitted only while it fits under the budget on top of the current load")
    func admission() {
        var cost = ProgramCost(assumed: 0.4)
        cost.record(cores: 0.1, programs: 0)
        cost.record(cores: 0.1, programs: 0)
        #expect(cost.admits(budget: 0.5, running: 0))
        #expect(!cost.admits(budget: 0.45, running: 0))
        cost.record(cores: 0.9, programs: 2)
        cost.record(cores: 0.9, programs: 2)
        #expect(abs(cost.perProgram - 0.4) < 1e-9)
        #expect(cost.admits(budget: 1.3, running: 2))
        #expect(!cost.admits(budget: 1.2, running: 2))
    }

    @Test("a process busier than its baseline by nothing costs nothing, never less")
    func neverNegative() {
        var cost = ProgramCost()
        cost.record(cores: 0.3, programs: 0)
        cost.record(cores: 0.3, programs: 0)
        cost.record(cores: 0.1, programs: 1)
        cost.record(cores: 0.1, programs: 1)
        #expect(cost.perProgram == 0)
    }

    @Test("a sample across a start teaches nothing, and a program just started counts before a sample shows it")
    func startsInFlight() {
        var cost = ProgramCost(assumed: 0.4)
        cost.record(cores: 0.1, programs: 0)
        cost.record(cores: 0.1, programs: 0)
        // The interval that saw the start still looks idle: it neither teaches a cost of
        // nothing nor lets a second program in on its idle figure.
        cost.record(cores: 0.1, programs: 1)
        #expect(!cost.measured && cost.perProgram == 0.4)
        #expect(!cost.admits(budget: 0.8, running: 1))
        #expect(cost.admits(budget: 0.9, running: 1))
    }
}
