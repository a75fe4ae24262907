import Foundation
import Glibc
import Synchronization

/// This process's CPU use between two samples, as a share of all the machine's cores.
public final class ProcessCPU: Sendable {
    private let last = Mutex<(cpu: Double, wall: Double)?>(nil)
    public let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    public init() {}

    /// The process's CPU time so far, user and system, in seconds.
    public static func seconds() -> Double? {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return nil }
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1_000_000
    }

    /// The share since the previous call (0 on the first).
    public func sample() -> Double {
        guard let cpu = Self.seconds() else { return 0 }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let wall = Double(now.tv_sec) + Double(now.tv_nsec) / 1_000_000_000
        let previous = last.withLock { last in
            defer { last = (cpu, wall) }
            return last
        }
        guard let previous, wall > previous.wall else { return 0 }
        return min(1, max(0, (cpu - previous.cpu) / (wall - previous.wall) / Double(cores)))
    }
}
