import CBenchSocket
import RTCP
import RTP

/// The in-band probe every bench packet ends with: who sent it and when, so receivers can
/// measure the forwarding delay without trusting the server's clocks or counters.
enum Probe {
    static let magic: [UInt8] = Array("TLYB".utf8)
    static let size = 24
    static let audioLayer: UInt8 = 255

    /// magic, layer, 3 reserved, packet id, send time (CLOCK_REALTIME ns, written at send).
    static func placeholder(layer: UInt8, id: UInt64) -> [UInt8] {
        magic + [layer, 0, 0, 0] + id.bigEndianBytes + [UInt8](repeating: 0, count: 8)
    }

    static func stamp(_ packet: inout [UInt8], at time: Int64) {
        let bytes = UInt64(bitPattern: time).bigEndianBytes
        packet.replaceSubrange((packet.count - 8)..<packet.count, with: bytes)
    }

    /// (layer, id, sent) from a decrypted RTP packet's last bytes.
    static func read(_ packet: [UInt8]) -> (layer: UInt8, id: UInt64, sent: Int64)? {
        let start = packet.count - size
        guard start >= 12, packet[start] == magic[0], packet[start + 1] == magic[1], packet[start + 2] == magic[2], packet[start + 3] == magic[3] else { return nil }
        let id = packet[(start + 8)..<(start + 16)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let sent = packet[(start + 16)..<(start + 24)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return (packet[start + 4], id, Int64(bitPattern: sent))
    }
}

extension UInt64 {
    var bigEndianBytes: [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: self >> (56 - 8 * $0)) } }
}

/// A 720p VP8 simulcast camera with Opus, shaped like Chromium's output: three layers at
/// 30 fps (h 1280×720 ~1.5 Mbps, m 640×360 ~500 kbps, l 320×180 ~150 kbps), a keyframe every
/// 2.5 s eight times a delta frame's size, and a keyframe on a layer soon after a PLI or FIR;
/// video leaves through a pacer at 2.5× the total rate in 5 ms steps, audio every 20 ms.
final class SimulcastPublisher {
    struct Layer {
        var rid: String
        var bitrate: Int
        var width: UInt16
        var height: UInt16
        var ssrc = UInt32.random(in: 1...UInt32.max)
        var sequence = UInt16.random(in: 0...UInt16.max)
        var timestamp = UInt32.random(in: 0...UInt32.max)
        var pictureID = UInt16.random(in: 0...0x7FFF)
        var framesSinceKeyframe = Int.random(in: 0..<75)
        var keyframeRequested = true
        var rtxSSRC = UInt32.random(in: 1...UInt32.max)
        var rtxSequence = UInt16.random(in: 0...UInt16.max)
        /// What was sent lately, by sequence number, for NACKs.
        var history = [[UInt8]?](repeating: nil, count: 1024)
    }

    static let framesPerSecond = 30
    static let keyframeInterval = 75
    static let maxPayload = 1100
    static let audioPayloadType: UInt8 = 111
    static let videoPayloadType: UInt8 = 96
    static let rtxPayloadType: UInt8 = 97

    let peer = BenchPeer()
    private(set) var layers = [
        Layer(rid: "l", bitrate: 150_000, width: 320, height: 180),
        Layer(rid: "m", bitrate: 500_000, width: 640, height: 360),
        Layer(rid: "h", bitrate: 1_500_000, width: 1280, height: 720),
    ]
    private let audioSSRC = UInt32.random(in: 1...UInt32.max)
    private var audioSequence = UInt16.random(in: 0...UInt16.max)
    private var audioTimestamp = UInt32.random(in: 0...UInt32.max)
    private var transportSequence: UInt16 = 0
    private var nextPacketID: UInt64 = 1
    private var queue: [[UInt8]] = []
    private var queueHead = 0
    private var nextFrameAt: Int64 = 0
    private var nextAudioAt: Int64 = 0
    private var pacerBudget = 0.0
    private var lastPacedAt: Int64 = 0
    private(set) var keyframeRequests = 0
    private(set) var nacksReceived = 0
    private(set) var retransmissions = 0
    private(set) var packetsSent = 0
    private var extensionIDs: (audioLevel: UInt8, transport: UInt8, mid: UInt8, rid: UInt8, repairedRID: UInt8)?

    private var pacingRate: Double { Double(layers.reduce(0) { $0 + $1.bitrate }) * 2.5 / 8 }

    func offer(fingerprint: String) -> String {
        peer.offer(fingerprint: fingerprint, sections: [
            ("m=audio 9 UDP/TLS/RTP/SAVPF 111", """
            \(BenchPeer.audioExtensionLines)
            a=sendonly
            a=msid:bench audio
            \(BenchPeer.opusLines)
            a=ssrc:\(audioSSRC) cname:bench
            """),
            ("m=video 9 UDP/TLS/RTP/SAVPF 96 97", """
            a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
            a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
            a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
            a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id
            a=sendonly
            a=msid:bench video
            \(BenchPeer.vp8Lines)
            a=rid:h send
            a=rid:m send
            a=rid:l send
            a=simulcast:send h;m;l
            """),
        ])
    }

    /// Sends what is due at `now`: audio frames, new video frames into the pacer, paced packets.
    func pump(now: Int64) {
        guard peer.isConnected else { return }
        if extensionIDs == nil {
            let ids = peer.extensions
            extensionIDs = (ids["urn:ietf:params:rtp-hdrext:ssrc-audio-level"] ?? 1,
                            ids["http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"] ?? 3,
                            ids["urn:ietf:params:rtp-hdrext:sdes:mid"] ?? 4, ids["urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"] ?? 10,
                            ids["urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"] ?? 11)
            nextFrameAt = now
            nextAudioAt = now
            lastPacedAt = now
        }
        while now >= nextAudioAt {
            nextAudioAt += 20_000_000
            sendAudio(now: now)
        }
        while now >= nextFrameAt {
            nextFrameAt += 1_000_000_000 / Int64(Self.framesPerSecond)
            for index in layers.indices { packetize(frameOf: index) }
        }
        // Budget accrues at the pacing rate; at most one 5 ms step's worth is kept when idle.
        pacerBudget = min(pacerBudget + pacingRate * Double(now - lastPacedAt) / 1e9, pacingRate * 0.005)
        lastPacedAt = now
        while queueHead < queue.count, pacerBudget > 0 {
            var packet = queue[queueHead]
            queueHead += 1
            pacerBudget -= Double(packet.count)
            transmit(&packet)
        }
        if queueHead == queue.count {
            queue.removeAll(keepingCapacity: true)
            queueHead = 0
        }
    }

    /// When the loop should next call `pump`.
    var nextDeadline: Int64 {
        queueHead < queue.count ? lastPacedAt + 5_000_000 : min(nextAudioAt, nextFrameAt)
    }

    func handle(_ packets: [RTCPPacket]) {
        for packet in packets {
            switch packet {
            case .pictureLossIndication(_, let ssrc):
                requestKeyframe(ssrc: ssrc)
            case .fullIntraRequest(let request):
                for entry in request.entries { requestKeyframe(ssrc: entry.ssrc) }
            case .nack(let nack):
                nacksReceived += nack.lostSequenceNumbers.count
                retransmit(nack.lostSequenceNumbers, ssrc: nack.mediaSSRC)
            default:
                continue
            }
        }
    }

    /// RTX (RFC 4588) for what the server missed: the original sequence number first, and
    /// the layer named by repaired-rid.
    private func retransmit(_ sequences: [UInt16], ssrc: UInt32) {
        guard let ids = extensionIDs, let index = layers.firstIndex(where: { $0.ssrc == ssrc }) else { return }
        for sequence in sequences {
            guard let bytes = layers[index].history[Int(sequence) % 1024], let original = try? RTPPacket(bytes), original.sequenceNumber == sequence else { continue }
            var builder = RTPPacketBuilder(payloadType: Self.rtxPayloadType, sequenceNumber: layers[index].rtxSequence, timestamp: original.timestamp, ssrc: layers[index].rtxSSRC)
            layers[index].rtxSequence &+= 1
            builder.marker = original.marker
            builder.extensions = [(ids.transport, [0, 0]), (ids.mid, Array("1".utf8)), (ids.repairedRID, Array(layers[index].rid.utf8))]
            builder.payload = [UInt8(sequence >> 8), UInt8(sequence & 0xFF)] + original.payload
            var packet = builder.serialize()
            retransmissions += 1
            transmit(&packet)
        }
    }

    private func requestKeyframe(ssrc: UInt32) {
        guard let index = layers.firstIndex(where: { $0.ssrc == ssrc }) else { return }
        keyframeRequests += 1
        layers[index].keyframeRequested = true
    }

    private func sendAudio(now: Int64) {
        guard let ids = extensionIDs else { return }
        var builder = RTPPacketBuilder(payloadType: Self.audioPayloadType, sequenceNumber: audioSequence, timestamp: audioTimestamp, ssrc: audioSSRC)
        audioSequence &+= 1
        audioTimestamp &+= 960
        builder.extensions = [(ids.transport, [0, 0]), (ids.mid, Array("0".utf8)), (ids.audioLevel, [0x80 | 30])]
        builder.payload = [0x78] + [UInt8](repeating: 0x5A, count: 60) + Probe.placeholder(layer: Probe.audioLayer, id: takePacketID())
        var packet = builder.serialize()
        transmit(&packet)
    }

    /// One frame of a layer, cut into packets with a VP8 payload descriptor each.
    private func packetize(frameOf index: Int) {
        guard let ids = extensionIDs else { return }
        var layer = layers[index]
        let isKeyframe = layer.keyframeRequested || layer.framesSinceKeyframe >= Self.keyframeInterval - 1
        // Delta frames share what is left of the bitrate after one keyframe per interval.
        let intervalBytes = Double(layer.bitrate) / 8 * Double(Self.keyframeInterval) / Double(Self.framesPerSecond)
        let deltaBytes = intervalBytes / Double(Self.keyframeInterval - 1 + 8)
        var remaining = Int(isKeyframe ? deltaBytes * 8 : deltaBytes * Double.random(in: 0.8...1.2))
        layer.framesSinceKeyframe = isKeyframe ? 0 : layer.framesSinceKeyframe + 1
        layer.keyframeRequested = false
        layer.timestamp &+= 90_000 / UInt32(Self.framesPerSecond)
        layer.pictureID = (layer.pictureID + 1) & 0x7FFF
        var first = true
        repeat {
            var payload: [UInt8] = [first ? 0x90 : 0x80, 0x80, 0x80 | UInt8(layer.pictureID >> 8), UInt8(layer.pictureID & 0xFF)]
            if first {
                // VP8 frame tag: show_frame set, P clear on keyframes; keyframes carry the start code and size.
                payload += isKeyframe ? [0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A] + layer.width.littleEndianBytes + layer.height.littleEndianBytes : [0x11, 0x02, 0x00]
            }
            let room = Self.maxPayload - payload.count - Probe.size
            let chunk = max(0, min(room, remaining))
            remaining -= chunk
            payload += [UInt8](repeating: 0xA5, count: chunk) + Probe.placeholder(layer: UInt8(index), id: takePacketID())
            var builder = RTPPacketBuilder(payloadType: Self.videoPayloadType, sequenceNumber: layer.sequence, timestamp: layer.timestamp, ssrc: layer.ssrc)
            layer.sequence &+= 1
            builder.marker = remaining <= 0
            builder.extensions = [(ids.transport, [0, 0]), (ids.mid, Array("1".utf8)), (ids.rid, Array(layer.rid.utf8))]
            builder.payload = payload
            queue.append(builder.serialize())
            first = false
        } while remaining > 0
        layers[index] = layer
    }

    private func takePacketID() -> UInt64 {
        defer { nextPacketID += 1 }
        return nextPacketID
    }

    /// Numbers the packet for transport-cc, stamps the send time, encrypts and sends it.
    private func transmit(_ packet: inout [UInt8]) {
        guard let ids = extensionIDs else { return }
        RTPPacket.overwriteExtension(id: ids.transport, with: RTPHeaderExtensionValue.encodeTransportSequence(transportSequence), in: &packet)
        transportSequence &+= 1
        Probe.stamp(&packet, at: tally_bench_realtime_nanoseconds())
        let ssrc = packet[8..<12].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        if packet[1] & 0x7F == Self.videoPayloadType, let index = layers.firstIndex(where: { $0.ssrc == ssrc }) {
            layers[index].history[Int(UInt16(packet[2]) << 8 | UInt16(packet[3])) % 1024] = packet
        }
        peer.sendRTP(packet)
        packetsSent += 1
    }
}

extension UInt16 {
    var littleEndianBytes: [UInt8] { [UInt8(self & 0xFF), UInt8(self >> 8)] }
}
