import Synchronization

/// Async work run one after another in the order it was handed in, from any thread.
public final class SerialTasks: Sendable {
    public init() {}

    private let last = Mutex<Task<Void, Never>?>(nil)

    public func enqueue(_ work: @escaping @Sendable () async -> Void) {
        last.withLock { last in
            let previous = last
            last = Task {
                await previous?.value
                await work()
            }
        }
    }

    /// Waits for everything handed in so far.
    public func drain() async {
        await last.withLock { $0 }?.value
    }
}
