import MediaCore
import RTCP
import RTP
import SFU

/// Latencies in 1 µs buckets up to 200 ms; slower ones share the last bucket.
struct Histogram {
    private var buckets = [Int](repeating: 0, count: 200_001)
    private(set) var count = 0
    private(set) var maximum = 0

    mutating func record(nanoseconds: Int64) {
        let micros = max(0, min(Int(nanoseconds / 1000), buckets.count - 1))
        buckets[micros] += 1
        count += 1
        maximum = max(maximum, micros)
    }

    /// The `fraction` quantile in microseconds.
    func quantile(_ fraction: Double) -> Int {
        guard count > 0 else { return 0 }
        let rank = Int((Double(count) * fraction).rounded(.up))
        var seen = 0
        for (micros, hits) in buckets.enumerated() {
            seen += hits
            if seen >= max(rank, 1) { return micros }
        }
        return maximum
    }
}

/// What the subscribers saw during one measurement window.
final class Measurement {
    let from: Int64
    var until = Int64.max
    /// Publisher send → subscriber kernel receive, every copy.
    var copies = Histogram()
    /// Publisher send → the last subscriber's receive of the same packet: the fan-out's tail.
    var lastCopies = Histogram()
    var rtp = 0
    var rtcp = 0
    var rtx = 0
    var bytes = 0
    /// Video packets per simulcast layer (l, m, h), and audio packets.
    var layerPackets = [0, 0, 0]
    var audioPackets = 0
    private let slots = 1 << 16
    private var flightIDs: [UInt64]
    private var flightSent: [Int64]
    private var flightLast: [Int64]

    init(from: Int64) {
        self.from = from
        flightIDs = Array(repeating: 0, count: slots)
        flightSent = Array(repeating: 0, count: slots)
        flightLast = Array(repeating: 0, count: slots)
    }

    func record(layer: UInt8, id: UInt64, sent: Int64, arrival: Int64) {
        guard sent >= from, sent < until, arrival > 0 else { return }
        copies.record(nanoseconds: arrival - sent)
        if layer == Probe.audioLayer { audioPackets += 1 } else if Int(layer) < layerPackets.count { layerPackets[Int(layer)] += 1 }
        let slot = Int(id & UInt64(slots - 1))
        if flightIDs[slot] != id {
            finish(slot)
            flightIDs[slot] = id
            flightSent[slot] = sent
            flightLast[slot] = arrival
        } else {
            flightLast[slot] = max(flightLast[slot], arrival)
        }
    }

    /// Closes the window: packets still in flight count with what arrived of them.
    func close() {
        for slot in 0..<slots { finish(slot) }
    }

    private func finish(_ slot: Int) {
        guard flightIDs[slot] != 0 else { return }
        lastCopies.record(nanoseconds: flightLast[slot] - flightSent[slot])
        flightIDs[slot] = 0
    }
}

/// One WHEP player: receives audio and one video layer, answers with transport-cc feedback
/// every 100 ms as a browser does, and keeps per-stream counts for loss.
final class BenchSubscriber {
    struct StreamCount {
        var unwrapper = SequenceUnwrapper()
        var highest: Int64?
        var received = 0
    }

    let peer = BenchPeer()
    private var feedback = TransportFeedbackRecorder()
    private var feedbackMediaSSRC: UInt32?
    private var nextFeedbackAt: Int64 = 0
    private(set) var streams: [UInt32: StreamCount] = [:]
    private let epoch: Int64

    init(epoch: Int64) {
        self.epoch = epoch
    }

    func offer(fingerprint: String) -> String {
        peer.offer(fingerprint: fingerprint, sections: [
            ("m=audio 9 UDP/TLS/RTP/SAVPF 111", """
            \(BenchPeer.audioExtensionLines)
            a=recvonly
            \(BenchPeer.opusLines)
            """),
            ("m=video 9 UDP/TLS/RTP/SAVPF 96 97", """
            a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
            a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
            a=recvonly
            \(BenchPeer.vp8Lines)
            """),
        ])
    }

    /// A decrypted RTP packet that arrived at `arrival` (kernel CLOCK_REALTIME ns).
    func receive(rtp bytes: [UInt8], arrival: Int64, measurement: Measurement?) {
        guard let packet = try? RTPPacket(bytes) else { return }
        if let id = peer.extensions["http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"],
           let sequence = RTPHeaderExtensionValue.transportSequence(packet.extensionValue(id: id)) {
            feedback.record(sequence, at: .nanoseconds(arrival - epoch))
            if feedbackMediaSSRC == nil { feedbackMediaSSRC = packet.ssrc }
        }
        measurement?.rtp += 1
        measurement?.bytes += bytes.count
        guard packet.payloadType == SimulcastPublisher.videoPayloadType || packet.payloadType == SimulcastPublisher.audioPayloadType else {
            measurement?.rtx += 1
            return
        }
        var stream = streams[packet.ssrc] ?? StreamCount()
        let unwrapped = stream.unwrapper.unwrap(packet.sequenceNumber)
        stream.highest = max(stream.highest ?? unwrapped, unwrapped)
        stream.received += 1
        streams[packet.ssrc] = stream
        if let probe = Probe.read(bytes) { measurement?.record(layer: probe.layer, id: probe.id, sent: probe.sent, arrival: arrival) }
    }

    func tick(now: Int64) {
        peer.tick(now: now)
        guard now >= nextFeedbackAt, let media = feedbackMediaSSRC else { return }
        nextFeedbackAt = now + 100_000_000
        if let packet = feedback.feedback(senderSSRC: 1, mediaSSRC: media) { peer.sendRTCP([.transportFeedback(packet)]) }
    }
}
