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

    public func publish(_ packet: ProgramPacket) {
        for output in outputs.withLock({ Array($0.values) }) { output.offer(packet) }
    }
}

/// How an output stays bounded: a stream starts on a video keyframe, and an output that
/// cannot keep up drops everything up to the next one (audio included, so the two stay in
/// step). Only those catch-up drops are counted: waiting for a first keyframe loses nothing.
struct KeyframeGate {
    var waiting = true
    private var catchingUp = false
    private(set) var dropped = 0
    /// Where drops are counted on /metrics.
    let counter: Counter?

    init(counter: Counter? = nil) {
        self.counter = counter
    }

    /// Whether to pass `packet`, given whether the output has room for it.
    mutating func admit(_ packet: ProgramPacket, hasRoom: Bool) -> Bool {
        if !hasRoom {
            waiting = true
            catchingUp = true
            countDrop()
            return false
        }
        if waiting {
            guard packet.kind == .video, packet.isKeyframe else {
                if catchingUp { countDrop() }
                return false
            }
            waiting = false
            catchingUp = false
        }
        return true
    }

    private mutating func countDrop() {
        dropped += 1
        counter?.increment()
    }
}
