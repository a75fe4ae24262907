import CDatagram
import Glibc
import MediaPlane
import NIOCore
import Synchronization

/// Where one thread's share of a fan-out is sent from.
///
/// On the event loop outside a parallel fan-out a lane sends through the server as any other
/// packet. In a parallel fan-out each thread has a lane of its own: its own `sendmmsg`
/// batch on the shared UDP socket, and lists of what only the loop may do (write to a
/// channel, count a failed send), which the loop carries out when the fan-out is over.
public final class FanOutLane: MediaLane {
    private unowned let server: WebRTCServer
    /// nil: the loop's own lane, which sends through the server.
    private let batch: DatagramBatch?
    private let allocator = ByteBufferAllocator()
    /// Packets the batch cannot take (ICE-TCP, too large): the loop transmits them.
    private var deferred: [(packet: ByteBuffer, peer: PeerConnection)] = []
    /// Datagrams the kernel had no room for: the loop queues them on the channel.
    private var overflowed: [(bytes: ByteBuffer, peer: PeerConnection)] = []
    private var refusals: [(peer: PeerConnection, error: CInt)] = []
    /// Packets this lane built in the current fan-out (a copy a consumer skips is none): how
    /// the work was shared, for metrics.
    private(set) var copies = 0
    /// The UDP socket, set by the loop before each parallel fan-out.
    var descriptor: CInt = -1

    init(server: WebRTCServer, batched: Bool) {
        self.server = server
        batch = batched ? DatagramBatch() : nil
    }

    /// Builds one RTP packet with `build` and sends it to `peer`, with the semantics of
    /// `WebRTCServer.sendRTP(on:capacity:_:)`: `build` runs exactly once.
    public func sendRTP(on session: any MediaSession, capacity: Int, _ build: (UnsafeMutableRawBufferPointer) -> Int?) {
        guard let peer = session as? PeerConnection else {
            // Another transport's session: built, so that its numbering stays in step, not sent.
            var scratch = allocator.buffer(capacity: capacity)
            scratch.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { build($0) ?? 0 }
            return
        }
        guard let batch else {
            server.sendRTP(on: peer, capacity: capacity, build)
            return
        }
        var built = false
        defer { if built { copies += 1 } }
        let lost = peer.egressLoss > 0 && Double.random(in: 0..<1) < peer.egressLoss
        if !lost, let destination = WebRTCServer.batchDestination(for: peer, length: capacity) {
            let queued = batch.append(for: peer, to: destination) { slot in
                let length = build(slot)
                built = length != nil
                return length
            }
            if queued, batch.isFull { send() }
            return
        }
        var packet = allocator.buffer(capacity: capacity + PeerConnection.protectionOverhead)
        packet.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { room in
            guard let length = build(room) else { return 0 }
            built = true
            return length
        }
        if built && !lost { deferred.append((packet, peer)) }
    }

    /// Sends the batch on the UDP socket, keeping for the loop what the kernel did not take.
    func send() {
        guard let batch, batch.count > 0 else { return }
        batch.send(on: descriptor, overflow: { bytes, peer in
            overflowed.append((allocator.buffer(bytes: bytes), peer))
        }, refused: { peer, error in
            refusals.append((peer, error))
        })
    }

    /// On the loop, once the fan-out is over: does what this lane left for it, and returns
    /// how many copies the lane built.
    func handOver(to server: WebRTCServer) -> Int {
        for (peer, error) in refusals { server.sendRefused(for: peer, error: error) }
        for (bytes, peer) in overflowed { server.queueOverflow(bytes, for: peer) }
        for (packet, peer) in deferred { server.transmit(packet, on: peer) }
        refusals.removeAll(keepingCapacity: true)
        overflowed.removeAll(keepingCapacity: true)
        deferred.removeAll(keepingCapacity: true)
        defer { copies = 0 }
        return copies
    }
}

/// Helper threads that share a large fan-out with the event loop, so that one packet's copies
/// to hundreds of subscribers leave from several cores at once.
///
/// The loop publishes a job (a count of items and what to do with a range of them) and takes
/// part in it; the work is split into chunks that whoever is free claims, so a helper that
/// wakes late or not at all only means the loop does more of it. The loop returns once every
/// chunk is done, so the consumers and transports a job touches are never used by two
/// threads at once: each item belongs to exactly one chunk, and outside a job only the loop
/// touches them.
///
/// `@unchecked Sendable`: `job` and `jobCount` are written by the loop only while no chunk
/// can be claimed, and read by a helper only after it claims one; the claim's ordering on
/// `state` makes the write visible.
final class FanOutWorkers: @unchecked Sendable {
    /// Items per chunk: small enough to spread 64 copies, large enough that claiming one
    /// costs nothing next to encrypting and sending its copies.
    static let chunkSize = 16
    /// Fewer items than this are not worth waking a helper for.
    static let minimumParallelCount = 2 * chunkSize

    /// The job's generation (high 32 bits), its chunk count (next 16) and the next chunk to
    /// claim (low 16).
    private let state = Atomic<UInt64>(0)
    private let completed = Atomic<Int>(0)
    private var job: ((FanOutLane, Range<Int>) -> Void)?
    private var jobCount = 0
    private var generation: UInt32 = 0
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wakeUp = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Signalled when a job's last chunk is done.
    private let finished = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Helpers asleep on `wakeUp`, and whether they should exit; both under `mutex`.
    private var parked = 0
    private var stopping = false
    /// The loop's lane first, then one per helper.
    let lanes: [FanOutLane]

    init(server: WebRTCServer, helpers: Int) {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wakeUp, nil)
        pthread_cond_init(finished, nil)
        lanes = (0...helpers).map { _ in FanOutLane(server: server, batched: true) }
        for lane in lanes.dropFirst() { startHelper(lane) }
    }

    deinit {
        pthread_cond_destroy(wakeUp)
        pthread_cond_destroy(finished)
        finished.deallocate()
        pthread_mutex_destroy(mutex)
        wakeUp.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` over `0..<count` in chunks on the calling thread (the loop) and the
    /// helpers; returns when every chunk is done and every lane's batch is sent.
    func run(count: Int, _ body: (FanOutLane, Range<Int>) -> Void) {
        let chunks = (count + Self.chunkSize - 1) / Self.chunkSize
        precondition(chunks < 1 << 16, "a fan-out of more than a million copies")
        withoutActuallyEscaping(body) { body in
            job = body
            jobCount = count
            completed.store(0, ordering: .relaxed)
            generation &+= 1
            state.store(UInt64(generation) << 32 | UInt64(chunks) << 16, ordering: .releasing)
            pthread_mutex_lock(mutex)
            if parked > 0 { pthread_cond_broadcast(wakeUp) }
            pthread_mutex_unlock(mutex)
            takePart(in: generation, lane: lanes[0])
            waitForCompletion(of: chunks)
            job = nil
        }
    }

    /// Waits for the helpers' last chunks: briefly spinning, since a chunk takes tens of
    /// microseconds, then asleep, so that a helper preempted mid-chunk does not cost the
    /// loop's core its time slice.
    private func waitForCompletion(of chunks: Int) {
        for _ in 0..<2_000 where completed.load(ordering: .acquiring) >= chunks { return }
        pthread_mutex_lock(mutex)
        while completed.load(ordering: .acquiring) < chunks { pthread_cond_wait(finished, mutex) }
        pthread_mutex_unlock(mutex)
    }

    /// Stops the helpers once they are idle.
    func stop() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_broadcast(wakeUp)
        pthread_mutex_unlock(mutex)
    }

    /// Claims and runs chunks of generation `generation` until none is left, then sends the
    /// lane's batch and counts the chunks done; whoever completes the job's last chunk
    /// wakes the loop, should it be asleep in `waitForCompletion`.
    private func takePart(in generation: UInt32, lane: FanOutLane) {
        var done = 0, chunks = 0
        while let claimed = claim(generation) {
            let start = claimed.chunk * Self.chunkSize
            job!(lane, start..<min(start + Self.chunkSize, jobCount))
            done += 1
            chunks = claimed.of
        }
        lane.send()
        guard done > 0 else { return }
        if completed.add(done, ordering: .acquiringAndReleasing).newValue == chunks {
            pthread_mutex_lock(mutex)
            pthread_cond_signal(finished)
            pthread_mutex_unlock(mutex)
        }
    }

    /// The next chunk of generation `generation`, and how many chunks it has; nil when none is left.
    private func claim(_ generation: UInt32) -> (chunk: Int, of: Int)? {
        var current = state.load(ordering: .acquiring)
        while true {
            let chunks = (current >> 16) & 0xFFFF, next = current & 0xFFFF
            guard UInt32(truncatingIfNeeded: current >> 32) == generation, next < chunks else { return nil }
            let (exchanged, original) = state.compareExchange(expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
            if exchanged { return (Int(next), Int(chunks)) }
            current = original
        }
    }

    private func startHelper(_ lane: FanOutLane) {
        let context = Unmanaged.passRetained(HelperContext(workers: self, lane: lane)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { context in
            let helper = Unmanaged<HelperContext>.fromOpaque(context!).takeRetainedValue()
            helper.workers.serve(lane: helper.lane)
            return nil
        }, context)
        if result == 0 {
            pthread_detach(thread)
        } else {
            Unmanaged<HelperContext>.fromOpaque(context).release()
        }
    }

    private final class HelperContext {
        let workers: FanOutWorkers
        let lane: FanOutLane
        init(workers: FanOutWorkers, lane: FanOutLane) {
            self.workers = workers
            self.lane = lane
        }
    }

    /// A helper's life: asleep until a job is published, then a part in it.
    private func serve(lane: FanOutLane) {
        var seen: UInt32 = 0
        while true {
            pthread_mutex_lock(mutex)
            while !stopping && UInt32(truncatingIfNeeded: state.load(ordering: .acquiring) >> 32) == seen {
                parked += 1
                pthread_cond_wait(wakeUp, mutex)
                parked -= 1
            }
            if stopping {
                pthread_mutex_unlock(mutex)
                return
            }
            pthread_mutex_unlock(mutex)
            seen = UInt32(truncatingIfNeeded: state.load(ordering: .acquiring) >> 32)
            takePart(in: seen, lane: lane)
        }
    }
}
