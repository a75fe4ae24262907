import MediaCodecs
import Metrics
import Synchronization

/// Takes the program's packets from the encoder and hands one to each output. The encoder
/// thread never waits here: every output queues or drops on its own.
public protocol ProgramOutput: AnyObject, Sendable {
    /// Called on the encoder's thread; must not block.
    func offer(_ packet: ProgramPacket)
}

public final class ProgramBus: Sendable {
    private let outputs = Mutex<[ObjectIdentifier: any ProgramOutput]>([:])

    public init() {}

    public func attach(_ output: any ProgramOutput) {
        outputs.withLock { $0[ObjectIdentifier(output)] = output }
    }

    public func detach(_ output: any ProgramOutput) {
        _ = outputs.withLock { $0.removeValue(forKey: ObjectIdentifier(output)) }
    }

    public func publish(_ packet: ProgramPacket) {
        for output in outputs.withLock({ Array($0.values) }) { output.offer(packet) }
    }
}

/// How an output stays bounded: when it cannot keep up it drops everything up to the next
/// video keyframe (audio included, so the two stay in step) and counts what it dropped.
struct KeyframeGate {
    var waiting = true
    var dropped = 0
    /// Where drops are counted on /metrics.
    var counter: Counter?

    /// Whether to pass `packet`, given whether the output has room for it.
    mutating func admit(_ packet: ProgramPacket, hasRoom: Bool) -> Bool {
        if !hasRoom {
            if !waiting { waiting = true }
            dropped += 1
            counter?.increment()
            return false
        }
        if waiting {
            guard packet.kind == .video, packet.isKeyframe else {
                // Before the first keyframe nothing is lost yet: only catching up counts.
                if dropped > 0 { counter?.increment() }
                dropped += 1
                return false
            }
            waiting = false
        }
        return true
    }
}
