import Cluster
import Foundation
import Glibc
import Metrics
import Synchronization

/// The machine's figures that alerts need without a separate exporter: this process's CPU
/// time and memory, the host's memory, and the data directory's disk. Sampled when
/// `/metrics` is scraped.
final class SystemFigures: Sendable {
    private let cpuSeconds = FloatingPointCounter(label: "tally_process_cpu_seconds_total")
    private let residentBytes = Gauge(label: "tally_process_resident_memory_bytes")
    private let cpus = Gauge(label: "tally_cpus")
    private let memoryTotal = Gauge(label: "tally_memory_total_bytes")
    private let memoryAvailable = Gauge(label: "tally_memory_available_bytes")
    private let diskSize = Gauge(label: "tally_data_disk_size_bytes")
    private let diskFree = Gauge(label: "tally_data_disk_free_bytes")
    private let countedCPU = Mutex<Double>(0)
    private let dataDirectory: String

    init(dataDirectory: URL) {
        self.dataDirectory = dataDirectory.path
    }

    func sample() {
        if let seconds = ProcessCPU.seconds() {
            let delta = countedCPU.withLock { counted -> Double in
                defer { counted = max(counted, seconds) }
                return seconds - counted
            }
            if delta > 0 { cpuSeconds.increment(by: delta) }
        }
        cpus.record(ProcessInfo.processInfo.activeProcessorCount)
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
           let pages = statm.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) {
            residentBytes.record(pages * Int(sysconf(Int32(_SC_PAGESIZE))))
        }
        if let meminfo = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) {
            for line in meminfo.split(separator: "\n") {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count >= 2, let kilobytes = Int(fields[1]) else { continue }
                if fields[0] == "MemTotal:" { memoryTotal.record(kilobytes * 1024) }
                if fields[0] == "MemAvailable:" { memoryAvailable.record(kilobytes * 1024) }
            }
        }
        var disk = statvfs()
        if statvfs(dataDirectory, &disk) == 0 {
            diskSize.record(Int(disk.f_blocks) * Int(disk.f_frsize))
            diskFree.record(Int(disk.f_bavail) * Int(disk.f_frsize))
        }
    }
}
