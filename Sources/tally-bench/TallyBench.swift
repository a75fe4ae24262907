import ArgumentParser
import CBenchSocket
import DTLS
import Foundation

@main
struct TallyBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally-bench",
        abstract: "Load generators for Tally's benchmarks (run them through scripts/bench).",
        subcommands: [SFUBenchmark.self, UDPBaseline.self, CompositorBenchmark.self])
}

struct SFUBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sfu",
        abstract: "N WebRTC subscribers on one VP8 simulcast publisher: the SFU's CPU, egress rate, loss, latency and memory.")

    @Option(help: "The running server.") var url = "http://127.0.0.1:8080"
    @Option(help: "The server's process id, for its CPU and memory from /proc.") var serverPID: Int32
    @Option(help: "Subscriber counts to measure, ascending, comma-separated.") var subscribers = "100,200,500"
    @Option(help: "Seconds to settle at each count before measuring.") var warmup = 5.0
    @Option(help: "Seconds measured at each count.") var duration = 15.0
    @Option(help: "Write the figures as JSON here too.") var json: String?
    @Option(help: "Subscribers play through this node instead (another node of the deployment, which relays).") var playURL: String?
    @Option(help: "That node's process id, for its CPU.") var playPID: Int32?

    func run() throws {
        let counts = subscribers.split(separator: ",").compactMap { Int($0) }
        guard !counts.isEmpty, counts == counts.sorted(), counts.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--subscribers takes ascending positive counts, like 100,200,500")
        }
        let bench = try SFULoad(url: url, serverPID: serverPID, playURL: playURL, playPID: playPID)
        try bench.publish()
        var results: [SFULoad.Result] = []
        for count in counts {
            try bench.connect(subscribers: count)
            bench.run(seconds: warmup)
            let result = try bench.measure(seconds: duration)
            results.append(result)
            print(result.line)
        }
        bench.closeAll()
        if let json {
            let data = try JSONEncoder().encode(results)
            try data.write(to: URL(fileURLWithPath: json))
        }
    }
}

/// The kernel's price of a loopback datagram on this core, measured in the same run as the
/// SFU so its figures can be read as a ratio that the machine's speed cancels out of.
struct UDPBaseline: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "udp-baseline",
        abstract: "Plain sendmmsg of unencrypted datagrams to N loopback sockets: packets per second per core, as JSON.")

    @Option(help: "Receiving sockets, round-robin.") var receivers = 500
    @Option(help: "Datagram size in bytes (the SFU benchmark's mean egress packet is about 850).") var size = 850
    @Option(help: "Seconds to send for.") var seconds = 3.0

    func run() throws {
        var sent: Int64 = 0, cpu: Int64 = 0
        let status = tally_bench_udp_baseline(Int32(receivers), Int32(size), seconds, &sent, &cpu)
        guard status == 0 else { throw BenchError("UDP baseline failed: \(String(cString: strerror(-status)))") }
        let perCore = Double(sent) / (Double(cpu) / 1e9)
        print(#"{"packets": \#(sent), "cpuSeconds": \#(Double(cpu) / 1e9), "packetsPerCore": \#(Int(perCore))}"#)
    }
}
