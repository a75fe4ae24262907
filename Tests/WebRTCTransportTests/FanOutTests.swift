import DTLS
import Glibc
import Logging
import NIOPosix
import Testing
@testable import WebRTCTransport

@Suite("Fan-out shared with helper threads")
struct FanOutTests {
    /// A pool on a server that is never started: the lanes need one, but these jobs send nothing.
    static func workers(helpers: Int) throws -> (WebRTCServer, FanOutWorkers) {
        let server = try WebRTCServer(configuration: WebRTCTransportConfiguration(), certificate: DTLSCertificate(),
                                      loop: MultiThreadedEventLoopGroup.singleton.next(), logger: Logger(label: "test"))
        return (server, FanOutWorkers(server: server, helpers: helpers))
    }

    @Test("every item of every fan-out is done exactly once, the helpers take part, and run returns only when all are done")
    func everyItemOnce() throws {
        let (server, workers) = try Self.workers(helpers: 3)
        defer { workers.stop(); withExtendedLifetime(server) {} }
        let count = 1000
        let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: count)
        hits.initialize(repeating: 0)
        defer { hits.deallocate() }
        let lanes = workers.lanes.map(ObjectIdentifier.init)
        let laneOfItem = UnsafeMutableBufferPointer<Int>.allocate(capacity: count)
        defer { laneOfItem.deallocate() }
        var lanesUsed = Set<Int>()
        for round in 1...20 {
            laneOfItem.initialize(repeating: -1)
            workers.run(count: count) { lane, range in
                let laneIndex = lanes.firstIndex(of: ObjectIdentifier(lane)) ?? -2
                for index in range {
                    hits[index] += 1
                    laneOfItem[index] = laneIndex
                    usleep(20)
                }
            }
            #expect(hits.allSatisfy { $0 == round })
            #expect(laneOfItem.allSatisfy { $0 >= 0 })
            lanesUsed.formUnion(laneOfItem)
        }
        #expect(lanesUsed.contains(0), "the loop's own lane")
        #expect(lanesUsed.count > 1, "a helper's lane")
    }

    @Test("fan-outs of no item, one, and around a chunk's size are done exactly once")
    func smallJobs() throws {
        let (server, workers) = try Self.workers(helpers: 1)
        defer { workers.stop(); withExtendedLifetime(server) {} }
        let chunk = FanOutWorkers.chunkSize
        for count in [0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk + 1] {
            let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(count, 1))
            hits.initialize(repeating: 0)
            workers.run(count: count) { _, range in
                for index in range { hits[index] += 1 }
            }
            #expect(hits.prefix(count).allSatisfy { $0 == 1 }, "\(count) items")
            hits.deallocate()
        }
    }
}
