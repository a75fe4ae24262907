/// Studio departures waiting out the resume grace period. The server stops them before it
/// closes the store and the registry they would use.
public actor DepartureSchedule {
    private var pending: [String: Task<Void, Never>] = [:]
    private var stopped = false

    public init() {}

    /// Runs `work` after `delay` unless stopped first; a newer departure of the same `key`
    /// replaces an older one.
    public func schedule(_ key: String, after delay: Duration, _ work: @escaping @Sendable () async -> Void) {
        guard !stopped else { return }
        pending[key]?.cancel()
        pending[key] = Task {
            try? await Task.sleep(for: delay)
            guard !Task.isCancelled else { return }
            await work()
            self.finished(key)
        }
    }

    public func stop() async {
        stopped = true
        let tasks = Array(pending.values)
        pending = [:]
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    private func finished(_ key: String) {
        pending[key] = nil
    }
}
