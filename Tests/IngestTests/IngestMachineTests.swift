import Foundation
@testable import Ingest
import Testing

@Suite("Ingest machine: a stream's life apart from its media")
struct IngestMachineTests {
    private let now = ContinuousClock.now

    private func attach(_ machine: inout IngestMachine) throws -> (token: UInt64, actions: [IngestMachine.Action]) {
        let attached = machine.attach(at: Date())
        return try #require(attached)
    }

    @Test("a publisher's media reaches the outputs from its first keyframe; a second publisher takes over")
    func publishing() throws {
        var machine = IngestMachine()
        #expect(machine.status == .starting && machine.publisher == nil)
        let (first, attached) = try attach(&machine)
        #expect(attached == [.report] && machine.status == .running && machine.publishers == 1)
        let verdict1 = machine.packet(token: first, canStart: false)
        #expect(verdict1 == .drop)
        let verdict2 = machine.packet(token: first, canStart: true)
        #expect(verdict2 == .emit(actions: [.beginSource, .openOutputs]))
        let verdict3 = machine.packet(token: first, canStart: false)
        #expect(verdict3 == .emit(actions: []))
        // New codec configuration switches the outputs at the next keyframe, not before.
        let stillCurrent1 = machine.tracksDidChange(token: first)
        #expect(stillCurrent1)
        let verdict4 = machine.packet(token: first, canStart: false)
        #expect(verdict4 == .emit(actions: []))
        let verdict5 = machine.packet(token: first, canStart: true)
        #expect(verdict5 == .emit(actions: [.switchTracks]))

        let (second, replaced) = try attach(&machine)
        #expect(replaced == [.closePublisher(reason: "replaced by a new publisher with the same key"), .report])
        let verdict6 = machine.packet(token: first, canStart: true)
        #expect(verdict6 == .stale)
        let stillCurrent2 = machine.tracksDidChange(token: first)
        #expect(!stillCurrent2)
        // The outputs stay open: the newcomer's keyframe switches them to its tracks.
        let verdict7 = machine.packet(token: second, canStart: true)
        #expect(verdict7 == .emit(actions: [.beginSource, .switchTracks]))
        #expect(machine.publishers == 2)
    }

    @Test("a publisher that leaves is held by the slate until it returns or time runs out")
    func slate() throws {
        var machine = IngestMachine()
        let (token, _) = try attach(&machine)
        _ = machine.packet(token: token, canStart: true)
        let detached1 = machine.detach(token: token + 1, at: now)
        #expect(detached1 == nil)
        let detached2 = machine.detach(token: token, at: now)
        #expect(detached2 == [.startSlate, .report])
        #expect(machine.status == .running && machine.phase == .holding(since: now))
        let tick1 = machine.slateTick(at: now + .seconds(59), timeout: .seconds(60))
        #expect(tick1 == [])

        let (back, returned) = try attach(&machine)
        #expect(returned == [.stopSlate, .report])
        let tick2 = machine.slateTick(at: now + .seconds(61), timeout: .seconds(60))
        #expect(tick2 == nil)
        _ = machine.packet(token: back, canStart: true)
        let detached3 = machine.detach(token: back, at: now)
        #expect(detached3 == [.startSlate, .report])
        let tick3 = machine.slateTick(at: now + .seconds(60), timeout: .seconds(60))
        #expect(tick3 == [.stopSlate, .closeOutputs, .report])
        #expect(machine.status == .starting && machine.startTime == nil)
        // With the outputs closed, the next publisher opens them afresh.
        let (next, _) = try attach(&machine)
        let verdict8 = machine.packet(token: next, canStart: true)
        #expect(verdict8 == .emit(actions: [.beginSource, .openOutputs]))
    }

    @Test("a publisher that leaves before any keyframe leaves nothing to hold")
    func leavesEarly() throws {
        var machine = IngestMachine()
        let (token, _) = try attach(&machine)
        let detached4 = machine.detach(token: token, at: now)
        #expect(detached4 == [.report])
        #expect(machine.status == .starting)
    }

    @Test("outputs that cannot open are opened again by the next publisher")
    func outputsFail() throws {
        var machine = IngestMachine()
        let (token, _) = try attach(&machine)
        _ = machine.packet(token: token, canStart: true)
        machine.outputsFailed()
        let detached5 = machine.detach(token: token, at: now)
        #expect(detached5 == [.report])
        let (next, _) = try attach(&machine)
        let verdict9 = machine.packet(token: next, canStart: true)
        #expect(verdict9 == .emit(actions: [.beginSource, .openOutputs]))
    }

    @Test("stopped and failed streams refuse publishers until armed; shutdown closes quietly")
    func stopAndFail() throws {
        var machine = IngestMachine()
        let (token, _) = try attach(&machine)
        let stopped1 = machine.stop()
        #expect(stopped1 == [.closePublisher(reason: "the stream was stopped"), .stopSlate, .closeOutputs, .report])
        let attached1 = machine.attach(at: Date())
        let verdict10 = machine.packet(token: token, canStart: true)
        #expect(machine.status == .stopped && attached1 == nil && verdict10 == .stale)
        let armed1 = machine.arm()
        let armed2 = machine.arm()
        #expect(armed1 == [.report] && armed2 == [])

        let (bad, _) = try attach(&machine)
        let failed1 = machine.fail(token: bad + 1, reason: "x")
        #expect(failed1 == nil)
        let failed2 = machine.fail(token: bad, reason: "H.265 is not carried")
        #expect(failed2 == [.closePublisher(reason: "H.265 is not carried"), .closeOutputs, .report])
        let attached2 = machine.attach(at: Date())
        #expect(machine.status == .error && machine.phase == .failed(reason: "H.265 is not carried") && attached2 == nil)
        let armed3 = machine.arm()
        #expect(armed3 == [.report] && machine.status == .starting)

        _ = try attach(&machine)
        let closing1 = machine.shutdown()
        #expect(closing1 == [.closePublisher(reason: "the server is shutting down"), .stopSlate, .closeOutputs])
        #expect(machine.publisher == nil)
    }
}
