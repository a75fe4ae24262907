import Dispatch
import MediaCodecs
import Metrics
import Synchronization

/// Runs file writes on a queue of their own with a bounded backlog, so disk stalls never
/// reach the encoder: past `limit` queued packets the gate drops to the next keyframe.
final class SerialWriter: Sendable {
    private let queue: DispatchQueue
    private let backlog = Atomic<Int>(0)
    private let gate: Mutex<KeyframeGate>
    let limit: Int

    init(label: String, limit: Int = 600, dropCounter: Counter) {
        queue = DispatchQueue(label: label)
        self.limit = limit
        gate = Mutex(KeyframeGate(counter: dropCounter))
    }

    func submit(_ packet: ProgramPacket, _ work: @escaping @Sendable (ProgramPacket) -> Void) {
        let hasRoom = backlog.load(ordering: .relaxed) < limit
        guard gate.withLock({ $0.admit(packet, hasRoom: hasRoom) }) else { return }
        backlog.add(1, ordering: .relaxed)
        queue.async { [self] in
            work(packet)
            backlog.subtract(1, ordering: .relaxed)
        }
    }

    /// Work that must happen in order with the packets around it, never dropped.
    func perform(_ work: @escaping @Sendable () -> Void) {
        queue.async(execute: work)
    }

    func sync<T: Sendable>(_ work: @Sendable () -> T) -> T {
        queue.sync(execute: work)
    }
}
