import Cluster
import Foundation
@testable import Rooms
import Testing

@Suite("Placement: which node runs a new program")
struct PlacementTests {
    static func node(_ id: String, cpu: Double, programs: Int = 0, capacity: Int = 4, draining: Bool = false) -> NodeRecord {
        NodeRecord(id: id, url: "http://\(id).example", startedAt: Date(), reportedAt: Date(), draining: draining,
                   load: NodeLoad(cpu: cpu, cpus: 2, livePrograms: programs, programCapacity: capacity, publishers: 0, subscribers: 0,
                                  egressBitsPerSecond: 0, programCost: 0.36, cpuBudget: 1.7))
    }

    @Test("the least loaded node with room comes first; draining and full nodes are left out")
    func leastLoadedFirst() {
        let nodes = [Self.node("a", cpu: 0.5, programs: 2), Self.node("b", cpu: 0.05), Self.node("c", cpu: 0.2, programs: 1),
                     Self.node("d", cpu: 0.0, draining: true), Self.node("e", cpu: 0.01, programs: 4)]
        #expect(ProgramDirector.byLoad(nodes, preferring: "a").map(\.id) == ["b", "c", "a"])
    }

    @Test("the asking node keeps the program unless another is busier by less than the margin")
    func theAskingNodeIsPreferredWithinTheMargin() {
        let close = [Self.node("a", cpu: 0.12), Self.node("b", cpu: 0.05)]
        #expect(ProgramDirector.byLoad(close, preferring: "a").map(\.id) == ["a", "b"])
        let far = [Self.node("a", cpu: 0.4, programs: 1), Self.node("b", cpu: 0.05)]
        #expect(ProgramDirector.byLoad(far, preferring: "a").map(\.id) == ["b", "a"])
        // Ties go to fewer programs, then to the id, so every node orders alike.
        let tied = [Self.node("z", cpu: 0.1, programs: 1), Self.node("y", cpu: 0.1), Self.node("x", cpu: 0.1)]
        #expect(ProgramDirector.byLoad(tied, preferring: "none").map(\.id) == ["x", "y", "z"])
    }
}
