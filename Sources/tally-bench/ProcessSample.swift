import Glibc

/// What /proc says about a process (and the machine's UDP counters) at one moment.
struct ProcessSample {
    var cpuSeconds: Double
    var residentBytes: Int
    var at: Int64

    init?(pid: Int32, at: Int64) {
        guard let stat = Self.read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command name: state is field 3, utime 14 and stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        cpuSeconds = (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
        let rss = Self.read("/proc/\(pid)/status")?.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
        residentBytes = (rss?.split(separator: " ").dropFirst().first).flatMap { Int($0) }.map { $0 * 1024 } ?? 0
        self.at = at
    }

    /// The share of one core used between two samples.
    static func cores(from start: ProcessSample, to end: ProcessSample) -> Double {
        (end.cpuSeconds - start.cpuSeconds) / (Double(end.at - start.at) / 1e9)
    }

    /// UDP datagrams the kernel dropped for full receive buffers, machine-wide (/proc/net/snmp).
    static func udpReceiveBufferErrors() -> Int {
        let lines = read("/proc/net/snmp")?.split(separator: "\n").filter { $0.hasPrefix("Udp:") } ?? []
        guard lines.count == 2 else { return 0 }
        let names = lines[0].split(separator: " "), values = lines[1].split(separator: " ")
        guard let index = names.firstIndex(of: "RcvbufErrors"), index < values.count else { return 0 }
        return Int(values[index]) ?? 0
    }

    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            bytes += chunk[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
