import Foundation
import Rooms
import Store
import Testing

@Suite("Broadcast lifecycle")
struct BroadcastLifecycleTests {
    @Test("only scheduled → live → ended is allowed", arguments: [
        (BroadcastStatus.scheduled, BroadcastLifecycle.Event.start, BroadcastStatus?.some(.live)),
        (.scheduled, .end, nil),
        (.live, .start, nil),
        (.live, .end, .ended),
        (.ended, .start, nil),
        (.ended, .end, nil),
    ])
    func transitions(from: BroadcastStatus, event: BroadcastLifecycle.Event, expected: BroadcastStatus?) {
        let result = try? BroadcastLifecycle.next(from: from, on: event).get()
        #expect(result == expected)
    }

    @Test("applying stamps the time and refuses a wrong move with a reason")
    func apply() throws {
        let broadcast = Broadcast(ownerID: UUID(), title: "t", description: "", settings: .init(), scheduledAt: nil)
        let start = Date(timeIntervalSince1970: 1_000)
        try BroadcastLifecycle.apply(.start, to: broadcast, at: start)
        #expect(broadcast.status == "live" && broadcast.startedAt == start)
        #expect(!BroadcastLifecycle.canDelete(.live))
        do {
            try BroadcastLifecycle.apply(.start, to: broadcast, at: start)
            Issue.record("a second start must fail")
        } catch {
            #expect(error.message == "the broadcast is already live")
        }
        try BroadcastLifecycle.apply(.end, to: broadcast, at: start.addingTimeInterval(60))
        #expect(broadcast.status == "ended" && broadcast.endedAt == start.addingTimeInterval(60))
        #expect(BroadcastLifecycle.canDelete(.ended))
    }
}
