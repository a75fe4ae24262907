import CBenchSocket
import DTLS
import Foundation
import Glibc

/// Drives one publisher and N subscribers from one thread: an epoll loop over their sockets,
/// the publisher's pacing clock, and the subscribers' feedback timers.
final class SFULoad {
    struct Result: Codable {
        var subscribers: Int
        var seconds: Double
        var serverCores: Double
        var generatorCores: Double
        var egressPacketsPerSecond: Double
        var egressPacketsPerCore: Double
        var egressMegabitsPerSecond: Double
        var loss: Double
        var kernelDrops: Int
        var latencyP50Micros: Int
        var latencyP99Micros: Int
        var lastCopyP50Micros: Int
        var lastCopyP99Micros: Int
        var lastCopyMaxMicros: Int
        var serverRSSMegabytes: Double
        var rssPerSubscriberKilobytes: Double
        var videoLayerShare: [Double]
        var keyframeRequests: Int
        var nacksToPublisher: Int
        var retransmissionsByPublisher: Int
        /// The second node's CPU, when the subscribers play through another node (a relay).
        var playNodeCores: Double?

        var line: String {
            let layers = videoLayerShare.map { String(format: "%.0f%%", $0 * 100) }.joined(separator: "/")
            return String(format: "N=%4d  server %.2f cores  egress %7.0f pps (%.0f Mbit/s)  %7.0f pps/core  loss %.3f%%  kernel drops %d  "
                          + "copy p50 %d µs p99 %d µs  last copy p50 %d µs p99 %d µs max %d µs  RSS %.1f MB (%.0f KB/subscriber)  "
                          + "layers l/m/h %@  generator %.2f cores  PLIs %d  NACKs %d  RTX %d",
                          subscribers, serverCores, egressPacketsPerSecond, egressMegabitsPerSecond, egressPacketsPerCore, loss * 100, kernelDrops,
                          latencyP50Micros, latencyP99Micros, lastCopyP50Micros, lastCopyP99Micros, lastCopyMaxMicros,
                          serverRSSMegabytes, rssPerSubscriberKilobytes, layers, generatorCores, keyframeRequests, nacksToPublisher, retransmissionsByPublisher)
        }
    }

    private let http: HTTPClient
    /// Where subscribers play from: the publisher's node, or another one that relays.
    private let playHTTP: HTTPClient
    private let serverPID: Int32
    private let playPID: Int32?
    private let context: DTLSContext
    private let fingerprint: String
    private let epoll: Int32
    private let epoch = tally_bench_realtime_nanoseconds()
    private let publisher = SimulcastPublisher()
    private var subscribers: [BenchSubscriber] = []
    private var token = ""
    private var broadcastID = ""
    private var participantID = ""
    private var baselineRSS = 0
    private var measurement: Measurement?
    private let batch = 64
    private let stride = 2048
    private let buffers: UnsafeMutablePointer<UInt8>
    private var lengths: [Int32]
    private var arrivals: [Int64]

    init(url: String, serverPID: Int32, playURL: String? = nil, playPID: Int32? = nil) throws {
        http = try HTTPClient(url: url)
        playHTTP = try HTTPClient(url: playURL ?? url)
        self.serverPID = serverPID
        self.playPID = playPID
        let certificate = try DTLSCertificate(commonName: "tally-bench")
        context = try DTLSContext(role: .client, certificate: certificate)
        fingerprint = certificate.fingerprintSHA256
        epoll = tally_bench_epoll_create()
        guard epoll >= 0 else { throw BenchError("epoll_create failed") }
        buffers = .allocate(capacity: batch * stride)
        lengths = Array(repeating: 0, count: batch)
        arrivals = Array(repeating: 0, count: batch)
    }

    deinit {
        buffers.deallocate()
    }

    /// An account, a broadcast, and the publisher on WHIP, sending until its layers are seen.
    func publish() throws {
        let email = "bench-\(epoch)@example.com"
        let registered = try http.post("/api/auth/register", body: #"{"email":"\#(email)","password":"bench password","name":"Bench"}"#, contentType: "application/json")
        guard registered.status == 201, let token = Self.jsonString("access_token", in: registered.body) else {
            throw BenchError("register: \(registered.status) \(registered.body)")
        }
        self.token = token
        let created = try http.post("/api/broadcasts", body: #"{"title":"SFU benchmark"}"#, contentType: "application/json", token: token)
        guard created.status == 201, let id = Self.jsonString("id", in: created.body) else { throw BenchError("create broadcast: \(created.status) \(created.body)") }
        broadcastID = id
        let reply = try http.post("/whip/\(id)", body: publisher.offer(fingerprint: fingerprint), contentType: "application/sdp", token: token)
        guard reply.status == 201, let location = reply.headers["location"] else { throw BenchError("WHIP: \(reply.status) \(reply.body)") }
        participantID = String(location.split(separator: "/").last ?? "")
        try publisher.peer.connect(answer: reply.body, context: context)
        _ = tally_bench_epoll_add(epoll, publisher.peer.fd, 0)
        try runUntil(seconds: 10, "the publisher to connect") { publisher.peer.isConnected }
        run(seconds: 3)
        baselineRSS = ProcessSample(pid: serverPID, at: 0)?.residentBytes ?? 0
    }

    /// Adds WHEP subscribers up to `count` and waits until every one has SRTP keys.
    func connect(subscribers count: Int) throws {
        while subscribers.count < count {
            let subscriber = BenchSubscriber(epoch: epoch)
            let reply = try playHTTP.post("/whep/\(broadcastID)/\(participantID)", body: subscriber.offer(fingerprint: fingerprint), contentType: "application/sdp", token: token)
            guard reply.status == 201 else { throw BenchError("WHEP #\(subscribers.count + 1): \(reply.status) \(reply.body)") }
            try subscriber.peer.connect(answer: reply.body, context: context)
            subscribers.append(subscriber)
            _ = tally_bench_epoll_add(epoll, subscriber.peer.fd, UInt64(subscribers.count))
            // Interleave with the loop so earlier peers handshake and the publisher keeps pace.
            if subscribers.count % 10 == 0 { run(seconds: 0.02) }
        }
        try runUntil(seconds: 60, "\(count) subscribers to connect") { subscribers.allSatisfy(\.peer.isConnected) }
        if let failed = subscribers.first(where: { $0.peer.failure != nil }) { throw BenchError("a subscriber failed: \(failed.peer.failure!)") }
    }

    func measure(seconds: Double) throws -> Result {
        let start = tally_bench_realtime_nanoseconds()
        guard let serverStart = ProcessSample(pid: serverPID, at: start) else { throw BenchError("no process \(serverPID)") }
        let selfStart = ProcessSample(pid: getpid(), at: start)!
        let playStart = playPID.flatMap { ProcessSample(pid: $0, at: start) }
        let dropsStart = ProcessSample.udpReceiveBufferErrors()
        let streamsStart = subscribers.map(\.streams)
        let keyframesStart = publisher.keyframeRequests, nacksStart = publisher.nacksReceived, rtxStart = publisher.retransmissions
        let window = Measurement(from: start)
        measurement = window
        run(seconds: seconds)
        let end = tally_bench_realtime_nanoseconds()
        window.until = end
        // Packets sent before the end may still be on their way.
        run(seconds: 0.2)
        measurement = nil
        window.close()
        let serverEnd = ProcessSample(pid: serverPID, at: end)!
        let selfEnd = ProcessSample(pid: getpid(), at: end)!
        let playEnd = playPID.flatMap { ProcessSample(pid: $0, at: end) }
        var expected = 0, received = 0
        for (before, subscriber) in zip(streamsStart, subscribers) {
            for (ssrc, now) in subscriber.streams {
                guard let last = before[ssrc], let highestThen = last.highest, let highestNow = now.highest else { continue }
                expected += Int(highestNow - highestThen)
                received += now.received - last.received
            }
        }
        let elapsed = Double(end - start) / 1e9
        let serverCores = ProcessSample.cores(from: serverStart, to: serverEnd)
        let packets = Double(window.rtp + window.rtcp) / elapsed
        let videoTotal = max(1, window.layerPackets.reduce(0, +))
        return Result(
            subscribers: subscribers.count, seconds: elapsed, serverCores: serverCores,
            generatorCores: ProcessSample.cores(from: selfStart, to: selfEnd),
            egressPacketsPerSecond: packets, egressPacketsPerCore: packets / max(serverCores, 0.001),
            egressMegabitsPerSecond: Double(window.bytes) * 8 / elapsed / 1e6,
            loss: expected > 0 ? max(0, Double(expected - received) / Double(expected)) : 0,
            kernelDrops: ProcessSample.udpReceiveBufferErrors() - dropsStart,
            latencyP50Micros: window.copies.quantile(0.5), latencyP99Micros: window.copies.quantile(0.99),
            lastCopyP50Micros: window.lastCopies.quantile(0.5), lastCopyP99Micros: window.lastCopies.quantile(0.99),
            lastCopyMaxMicros: window.lastCopies.maximum,
            serverRSSMegabytes: Double(serverEnd.residentBytes) / 1e6,
            rssPerSubscriberKilobytes: Double(serverEnd.residentBytes - baselineRSS) / 1e3 / Double(subscribers.count),
            videoLayerShare: window.layerPackets.map { Double($0) / Double(videoTotal) },
            keyframeRequests: publisher.keyframeRequests - keyframesStart, nacksToPublisher: publisher.nacksReceived - nacksStart,
            retransmissionsByPublisher: publisher.retransmissions - rtxStart,
            playNodeCores: playStart.flatMap { start in playEnd.map { ProcessSample.cores(from: start, to: $0) } })
    }

    func closeAll() {
        for subscriber in subscribers { subscriber.peer.close() }
        publisher.peer.close()
    }

    func run(seconds: Double) {
        let until = tally_bench_realtime_nanoseconds() + Int64(seconds * 1e9)
        while tally_bench_realtime_nanoseconds() < until { iterate() }
    }

    private func runUntil(seconds: Double, _ what: String, _ done: () -> Bool) throws {
        let until = tally_bench_realtime_nanoseconds() + Int64(seconds * 1e9)
        while !done() {
            guard tally_bench_realtime_nanoseconds() < until else { throw BenchError("timed out after \(Int(seconds)) s waiting for \(what)") }
            iterate()
        }
    }

    private var nextTickAt: Int64 = 0

    /// One turn: timers, then whatever sockets are readable (waiting at most until the
    /// publisher's next deadline).
    private func iterate() {
        var now = tally_bench_realtime_nanoseconds()
        publisher.pump(now: now)
        if now >= nextTickAt {
            nextTickAt = now + 20_000_000
            publisher.peer.tick(now: now)
            for subscriber in subscribers { subscriber.tick(now: now) }
        }
        let wait = max(0, min(publisher.nextDeadline, nextTickAt) - now)
        var tags = [UInt64](repeating: 0, count: 256)
        let ready = tally_bench_epoll_wait(epoll, &tags, Int32(tags.count), Int32((wait + 999_999) / 1_000_000))
        guard ready > 0 else { return }
        for tag in tags[0..<Int(ready)] {
            let peer = tag == 0 ? publisher.peer : subscribers[Int(tag) - 1].peer
            while true {
                let count = lengths.withUnsafeMutableBufferPointer { lengths in
                    arrivals.withUnsafeMutableBufferPointer { arrivals in
                        tally_bench_receive(peer.fd, buffers, stride, Int32(batch), lengths.baseAddress, arrivals.baseAddress)
                    }
                }
                guard count > 0 else { break }
                now = tally_bench_realtime_nanoseconds()
                for index in 0..<Int(count) {
                    var packet = Array(UnsafeBufferPointer(start: buffers + index * stride, count: Int(lengths[index])))
                    switch peer.receive(&packet, now: now) {
                    case .rtp where tag != 0:
                        subscribers[Int(tag) - 1].receive(rtp: packet, arrival: arrivals[index], measurement: measurement)
                    case .rtcp(let packets):
                        if tag == 0 { publisher.handle(packets) } else { measurement?.rtcp += 1 }
                    default:
                        break
                    }
                }
                if count < batch { break }
            }
        }
    }

    /// A top-level string field of a JSON object.
    private static func jsonString(_ key: String, in body: String) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else { return nil }
        return object[key] as? String
    }
}
