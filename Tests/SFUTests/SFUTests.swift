import MediaCore
import NIOCore
import RTCP
import RTP
import SDP
import Testing
@testable import SFU

/// Packets as a simulcast VP8 publisher sends them: rid in extension 10, repaired-rid in 11.
enum Publisher {
    static let producerID = ProducerID(participant: ParticipantID("p"), mid: "1")
    static let media = NegotiatedMedia(
        mid: "1", kind: .video, direction: .recvonly,
        codec: RTPCodec(payloadType: 96, name: "VP8", clockRate: 90000), retransmission: RTPCodec(payloadType: 97, name: "rtx", clockRate: 90000),
        headerExtensions: [.init(id: 4, uri: RTPHeaderExtensionURI.mid), .init(id: 10, uri: RTPHeaderExtensionURI.rid),
                           .init(id: 11, uri: RTPHeaderExtensionURI.repairedRID)],
        remoteSSRCs: [], remoteRetransmissionPairs: [], remoteRIDs: ["h", "m", "l"], localStream: nil)

    static let ssrcs: [String: UInt32] = ["l": 100, "m": 200, "h": 300]

    static func packet(rid: String, sequence: UInt16, timestamp: UInt32 = 0, keyframe: Bool = false) -> RTPPacket {
        var builder = RTPPacketBuilder(payloadType: 96, sequenceNumber: sequence, timestamp: timestamp, ssrc: ssrcs[rid]!)
        builder.extensions = [(4, Array("1".utf8)), (10, Array(rid.utf8))]
        builder.payload = [0x10, keyframe ? 0x00 : 0x01, 0xAB] // VP8: S=1 PID=0, then the frame header's P bit
        return try! RTPPacket(builder.serialize())
    }
}

@Suite("Producer: simulcast layers, RTX, losses")
struct ProducerTests {
    @Test("layers are told apart by rid, lowest first, and keyframes are seen")
    func layers() throws {
        let producer = Producer(id: Publisher.producerID, media: Publisher.media)
        #expect(producer.rids == ["l", "m", "h"])
        let arrival = try #require(producer.receive(Publisher.packet(rid: "h", sequence: 1, keyframe: true), now: .seconds(1)))
        #expect(arrival.layer == 2 && arrival.isKeyframe && !arrival.repaired)
        #expect(producer.receive(Publisher.packet(rid: "l", sequence: 7), now: .seconds(1))?.layer == 0)
        #expect(producer.ssrc(ofLayer: 2) == 300 && producer.activeLayers(now: .seconds(1)) == [0, 2])
        #expect(producer.activeLayers(now: .seconds(3)).isEmpty)
    }

    @Test("an RTX packet is unwrapped into the layer's original packet")
    func retransmission() throws {
        let producer = Producer(id: Publisher.producerID, media: Publisher.media)
        _ = producer.receive(Publisher.packet(rid: "m", sequence: 50), now: .zero)
        var rtx = RTPPacketBuilder(payloadType: 97, sequenceNumber: 9, timestamp: 0, ssrc: 999)
        rtx.extensions = [(11, Array("m".utf8))]
        rtx.payload = [0x00, 0x33, 0x10, 0x00, 0xCD] // original sequence 51, then the VP8 payload
        let arrival = try #require(producer.receive(try RTPPacket(rtx.serialize()), now: .zero))
        #expect(arrival.repaired && arrival.layer == 1 && arrival.isKeyframe)
        #expect(arrival.packet.sequenceNumber == 51 && arrival.packet.ssrc == 200 && arrival.packet.payloadType == 96)
        #expect(Array(arrival.packet.payload) == [0x10, 0x00, 0xCD])
        // The same packet again, as a publisher's padding would repeat it: not media any more.
        #expect(producer.receive(try RTPPacket(rtx.serialize()), now: .zero) == nil)
        #expect(producer.receive(Publisher.packet(rid: "m", sequence: 50), now: .zero) == nil)
        #expect(producer.layers[1].packets == 2)
    }

    @Test("gaps are NACKed up to three times, 100 ms apart, and filled ones forgotten")
    func nacks() {
        let producer = Producer(id: Publisher.producerID, media: Publisher.media)
        _ = producer.receive(Publisher.packet(rid: "h", sequence: 10), now: .zero)
        _ = producer.receive(Publisher.packet(rid: "h", sequence: 14), now: .milliseconds(5))
        #expect(producer.pendingNACKs(now: .milliseconds(10)).first?.sequences == [11, 12, 13])
        #expect(producer.pendingNACKs(now: .milliseconds(50)).isEmpty)
        _ = producer.receive(Publisher.packet(rid: "h", sequence: 12), now: .milliseconds(60))
        #expect(producer.pendingNACKs(now: .milliseconds(120)).first?.sequences == [11, 13])
        #expect(producer.pendingNACKs(now: .milliseconds(330)).first?.sequences == [11, 13])
        #expect(producer.pendingNACKs(now: .milliseconds(600)).isEmpty)
    }
}

@Suite("Consumer: layer switching and rewriting")
struct ConsumerTests {
    static let subscriberMedia = NegotiatedMedia(
        mid: "0", kind: .video, direction: .sendonly,
        codec: RTPCodec(payloadType: 100, name: "VP8", clockRate: 90000), retransmission: RTPCodec(payloadType: 101, name: "rtx", clockRate: 90000),
        headerExtensions: [.init(id: 9, uri: RTPHeaderExtensionURI.mid)], remoteSSRCs: [], remoteRetransmissionPairs: [], remoteRIDs: [],
        localStream: LocalStream(ssrc: 7777, rtxSSRC: 8888, cname: "c", streamID: "s", trackID: "t"))

    @Test("it waits for a keyframe, switches up on one, and keeps numbering continuous")
    func switching() throws {
        let producer = Producer(id: Publisher.producerID, media: Publisher.media)
        let consumer = Consumer(id: "c", producerID: Publisher.producerID, media: Self.subscriberMedia, outgoing: Self.subscriberMedia.localStream!)
        func send(_ rid: String, _ sequence: UInt16, _ timestamp: UInt32, key: Bool = false, best: Int, at ms: Int) -> Forwarded {
            consumer.forward(producer.receive(Publisher.packet(rid: rid, sequence: sequence, timestamp: timestamp, keyframe: key), now: .milliseconds(ms))!,
                             bestLayer: best, now: .milliseconds(ms))
        }
        // Only the low layer is active: it waits for its keyframe, then forwards it.
        #expect(send("l", 10, 1000, best: 0, at: 0).keyframeNeeded == 0)
        let first = try RTPPacket(try #require(send("l", 11, 1000, key: true, best: 0, at: 10).bytes))
        #expect(first.ssrc == 7777 && first.payloadType == 100)
        #expect(RTPHeaderExtensionValue.token(first.extensionValue(id: 9)) == "0")
        let second = try RTPPacket(try #require(send("l", 12, 4000, best: 0, at: 43).bytes))
        #expect(second.sequenceNumber == first.sequenceNumber &+ 1 && second.timestamp == first.timestamp &+ 3000)

        // The high layer appears: the low layer keeps flowing until the high keyframe.
        let waiting = send("h", 500, 90_000, best: 2, at: 60)
        #expect(waiting.bytes == nil && waiting.keyframeNeeded == 2)
        #expect(send("l", 13, 7000, best: 2, at: 76).bytes != nil)
        let switched = try RTPPacket(try #require(send("h", 501, 93_000, key: true, best: 2, at: 110).bytes))
        #expect(consumer.currentLayer == 2)
        #expect(switched.sequenceNumber == first.sequenceNumber &+ 3)
        #expect(SerialNumber.isNewer(switched.timestamp, than: second.timestamp &+ 3000))
        #expect(send("l", 14, 10000, best: 2, at: 120).bytes == nil)
        #expect(consumer.drops.otherLayer == 1 && consumer.drops.notAKeyframe == 2)

        // A NACK for what was sent comes back as RTX carrying the sent sequence number.
        let resent = consumer.retransmit([switched.sequenceNumber, first.sequenceNumber, switched.sequenceNumber &+ 1], from: producer)
        #expect(resent.count == 2)
        let rtx = try RTPPacket(Array(try #require(resent.first).readableBytesView))
        #expect(rtx.payloadType == 101 && rtx.ssrc == 8888 && rtx.timestamp == switched.timestamp && rtx.marker == switched.marker)
        #expect(Array(rtx.payload.prefix(2)) == [UInt8(switched.sequenceNumber >> 8), UInt8(switched.sequenceNumber & 0xFF)])
        #expect(Array(rtx.payload.dropFirst(2)) == Array(switched.payload))
        // An earlier epoch's packet maps back to the low layer's source.
        let older = try RTPPacket(Array(resent[1].readableBytesView))
        #expect(Array(older.payload.dropFirst(2)) == Array(first.payload) && older.timestamp == first.timestamp)
    }

    @Test("VP8 picture IDs and TL0PICIDX run on across a layer switch, retransmissions included")
    func pictureNumbering() throws {
        let producer = Producer(id: Publisher.producerID, media: Publisher.media)
        let consumer = Consumer(id: "c", producerID: Publisher.producerID, media: Self.subscriberMedia, outgoing: Self.subscriberMedia.localStream!)
        // Each layer's encoder numbers its pictures from its own random start.
        func send(_ rid: String, _ sequence: UInt16, picture: UInt16, tl0: UInt8, key: Bool = false, best: Int, at ms: Int) throws -> (VP8Descriptor, UInt16)? {
            var builder = RTPPacketBuilder(payloadType: 96, sequenceNumber: sequence, timestamp: UInt32(ms) * 90, ssrc: Publisher.ssrcs[rid]!)
            builder.extensions = [(4, Array("1".utf8)), (10, Array(rid.utf8))]
            builder.payload = [0x90, 0xC0, 0x80 | UInt8(picture >> 8), UInt8(picture & 0xFF), tl0, key ? 0x00 : 0x01, 0xAB]
            let arrival = try #require(producer.receive(try RTPPacket(builder.serialize()), now: .milliseconds(ms)))
            guard let bytes = consumer.forward(arrival, bestLayer: best, now: .milliseconds(ms)).bytes else { return nil }
            let sent = try RTPPacket(bytes)
            return try #require(VP8Descriptor.parse(sent.payload)).map { ($0, sent.sequenceNumber) }
        }
        let first = try #require(try send("m", 10, picture: 0x7FFE, tl0: 200, key: true, best: 1, at: 0)).0
        #expect(first.pictureID == 0x7FFE && first.tl0PictureIndex == 200)
        #expect(try send("m", 11, picture: 0x7FFF, tl0: 201, best: 1, at: 33)?.0.pictureID == 0x7FFF)
        // The high layer's numbers are far behind the middle one's; the receiver must not see that.
        let switched = try #require(try send("h", 900, picture: 17, tl0: 3, key: true, best: 2, at: 66)).0
        #expect(switched.pictureID == 0 && switched.tl0PictureIndex == 202)
        let (next, sequence) = try #require(try send("h", 901, picture: 18, tl0: 3, best: 2, at: 100))
        #expect(next.pictureID == 1 && next.tl0PictureIndex == 202)
        let resent = try #require(consumer.retransmit([sequence], from: producer).first)
        let rtx = try RTPPacket(Array(resent.readableBytesView))
        #expect(VP8Descriptor.parse(rtx.payload.dropFirst(2))?.pictureID == 1)
    }

    @Test("a probe without recent packets to resend is padding-only RTX, which the receiver discards")
    func paddingProbe() throws {
        let producer = Producer(id: Publisher.producerID, media: Publisher.media)
        let consumer = Consumer(id: "c", producerID: Publisher.producerID, media: Self.subscriberMedia, outgoing: Self.subscriberMedia.localStream!)
        var numbers: [UInt16] = []
        let probes = consumer.probePackets(count: 5, from: producer) { _ in
            numbers.append(UInt16(numbers.count))
            return numbers.last
        }
        #expect(probes.count == 5)
        for probe in probes {
            let packet = try RTPPacket(Array(probe.readableBytesView))
            #expect(packet.payloadType == 101 && packet.ssrc == 8888 && packet.payload.isEmpty && packet.paddingLength == Consumer.paddingBytes)
        }
        // With a packet sent, the probe resends it first and pads the rest.
        _ = consumer.forward(producer.receive(Publisher.packet(rid: "l", sequence: 1, keyframe: true), now: .zero)!, bestLayer: 0, now: .zero)
        let mixed = try consumer.probePackets(count: 3, from: producer) { _ in nil }.map { try RTPPacket(Array($0.readableBytesView)) }
        #expect(mixed.map(\.payload.isEmpty) == [false, true, true])
    }

    @Test("a paused consumer sends nothing, and on resuming waits for a keyframe")
    func pauseAndResume() throws {
        let producer = Producer(id: Publisher.producerID, media: Publisher.media)
        let consumer = Consumer(id: "c", producerID: Publisher.producerID, media: Self.subscriberMedia, outgoing: Self.subscriberMedia.localStream!)
        #expect(consumer.forward(producer.receive(Publisher.packet(rid: "l", sequence: 1, keyframe: true), now: .zero)!, bestLayer: 0, now: .zero).bytes != nil)
        consumer.apply(.pause(.bandwidth(available: 0, lowestLayer: 100_000)))
        #expect(consumer.forward(producer.receive(Publisher.packet(rid: "l", sequence: 2, keyframe: true), now: .zero)!, bestLayer: 0, now: .zero).bytes == nil)
        #expect(consumer.drops.paused == 1)
        consumer.apply(.target(layer: 0))
        let midGOP = consumer.forward(producer.receive(Publisher.packet(rid: "l", sequence: 3), now: .zero)!, bestLayer: 0, now: .zero)
        #expect(midGOP.bytes == nil && midGOP.keyframeNeeded == 0)
        #expect(consumer.forward(producer.receive(Publisher.packet(rid: "l", sequence: 4, keyframe: true), now: .zero)!, bestLayer: 0, now: .zero).bytes != nil)
    }

    @Test("a preferred lower layer is honoured")
    func preferred() throws {
        let producer = Producer(id: Publisher.producerID, media: Publisher.media)
        let consumer = Consumer(id: "c", producerID: Publisher.producerID, media: Self.subscriberMedia, outgoing: Self.subscriberMedia.localStream!)
        consumer.preferredLayer = 1
        let arrival = producer.receive(Publisher.packet(rid: "h", sequence: 1, keyframe: true), now: .zero)!
        #expect(consumer.forward(arrival, bestLayer: 2, now: .zero).bytes == nil)
        let middle = producer.receive(Publisher.packet(rid: "m", sequence: 1, keyframe: true), now: .zero)!
        #expect(consumer.forward(middle, bestLayer: 2, now: .zero).bytes != nil && consumer.currentLayer == 1)
    }
}

@Suite("Transport-wide feedback recorder")
struct TransportFeedbackRecorderTests {
    @Test("arrivals become feedback with 250 µs deltas and losses, across the wrap")
    func feedback() throws {
        var recorder = TransportFeedbackRecorder()
        recorder.record(65534, at: .milliseconds(1000))
        recorder.record(65535, at: .milliseconds(1005))
        recorder.record(1, at: .milliseconds(1012))
        let made = recorder.feedback(senderSSRC: 1, mediaSSRC: 2)
        let feedback = try #require(made)
        #expect(feedback.baseSequenceNumber == 65534 && feedback.packets.count == 4)
        #expect(feedback.packets.map(\.delta) == [Int16((1_000_000 - (1_000_000 / 64_000) * 64_000) / 250), 20, nil, 28])
        let parsed = try RTCPCompound.parse(RTCPCompound.serialize([.transportFeedback(feedback)]))
        #expect(parsed == [.transportFeedback(feedback)])
        #expect(recorder.feedback(senderSSRC: 1, mediaSSRC: 2) == nil)
        recorder.record(2, at: .milliseconds(1100))
        let next = recorder.feedback(senderSSRC: 1, mediaSSRC: 2)
        #expect(next?.feedbackCount == 1)
    }
}

@Suite("Send history for transport-wide feedback")
struct SendHistoryTests {
    @Test("each number is reported once, across the wrap; one a whole ring older is gone")
    func takeOnce() {
        var history = SendHistory()
        history.record(65535, at: .milliseconds(10), size: 1100, probe: nil)
        history.record(0, at: .milliseconds(11), size: 300, probe: 4)
        #expect(history.take(65535) == SendHistory.Sent(at: .milliseconds(10), size: 1100, probe: nil))
        #expect(history.take(65535) == nil)
        #expect(history.take(0) == SendHistory.Sent(at: .milliseconds(11), size: 300, probe: 4))
        #expect(history.take(1) == nil)
        history.record(5, at: .milliseconds(20), size: 900, probe: nil)
        history.record(UInt16(5 + SendHistory.capacity), at: .milliseconds(30), size: 800, probe: nil)
        #expect(history.take(5) == nil)
        #expect(history.take(UInt16(5 + SendHistory.capacity))?.size == 800)
    }
}

@Suite("Active speaker from audio levels")
struct ActiveSpeakerTests {
    @Test("the loudest speaker over a second wins; a slightly louder one does not steal the floor; silence clears it")
    func speakers() {
        var observer = ActiveSpeakerObserver<String>()
        for step in 0..<50 {
            let at = Duration.milliseconds(step * 20)
            observer.record(producer: "alice", level: 60, at: at)   // loudness 67
            observer.record(producer: "bob", level: 110, at: at)    // loudness 17: background
        }
        #expect(observer.evaluate(now: .milliseconds(1000)) == .some("alice"))
        #expect(observer.evaluate(now: .milliseconds(1000)) == .none)
        for step in 50..<100 {
            let at = Duration.milliseconds(step * 20)
            observer.record(producer: "alice", level: 60, at: at)
            observer.record(producer: "bob", level: 57, at: at)     // loudness 70: within the margin
        }
        #expect(observer.evaluate(now: .milliseconds(2000)) == .none)
        for step in 100..<150 {
            let at = Duration.milliseconds(step * 20)
            observer.record(producer: "alice", level: 120, at: at)  // alice stops
            observer.record(producer: "bob", level: 50, at: at)
        }
        #expect(observer.evaluate(now: .milliseconds(3000)) == .some("bob"))
        #expect(observer.evaluate(now: .milliseconds(4500)) == .some(nil))
    }
}

@Suite("Bandwidth estimator (GCC-like)")
struct BandwidthEstimatorTests {
    /// 100 ms of 1200-byte packets every 10 ms, their one-way delay growing by `delayGrowth` each.
    static func feed(_ estimator: inout BandwidthEstimator, seconds: Int, delayGrowth: Duration = .zero, lossEvery: Int = 0) {
        var sent = Duration.zero
        var delay = Duration.milliseconds(20)
        var index = 0
        for tick in 1...(seconds * 10) {
            var results: [BandwidthEstimator.PacketResult] = []
            for _ in 0..<10 {
                index += 1
                let lost = lossEvery > 0 && index % lossEvery == 0
                results.append(.init(sentAt: sent, arrivedAt: lost ? nil : sent + delay, size: 1200))
                sent += .milliseconds(10)
                delay += delayGrowth
            }
            estimator.update(results, now: .milliseconds(tick * 100) + .milliseconds(30))
        }
    }

    @Test("a clean path lets the estimate grow about 8 % a second, up to 1.5× what got through")
    func grows() {
        var estimator = BandwidthEstimator(initial: 1_000_000)
        Self.feed(&estimator, seconds: 5)
        #expect(estimator.usage == .normal)
        #expect(estimator.estimate > 1_350_000 && estimator.estimate < 1_470_000)
        #expect((estimator.acknowledgedBitrate ?? 0) > 900_000)
        Self.feed(&estimator, seconds: 20)
        let acknowledged = estimator.acknowledgedBitrate ?? 0
        #expect(estimator.estimate <= 1.5 * acknowledged && estimator.estimate > 1.4 * acknowledged)
    }

    @Test("a probe lifts the ceiling for a while; during overuse it is ignored")
    func probe() {
        var estimator = BandwidthEstimator(initial: 1_000_000)
        Self.feed(&estimator, seconds: 20)
        estimator.applyProbe(bitrate: 4_000_000, now: .seconds(20))
        #expect(estimator.estimate == 4_000_000)
        var congested = BandwidthEstimator(initial: 3_000_000)
        Self.feed(&congested, seconds: 3, delayGrowth: .milliseconds(2))
        let before = congested.estimate
        congested.applyProbe(bitrate: 4_000_000, now: .seconds(3))
        #expect(congested.estimate == before)
    }

    @Test("a growing queue is overuse: the estimate drops below what got through")
    func delay() {
        var estimator = BandwidthEstimator(initial: 3_000_000)
        Self.feed(&estimator, seconds: 3, delayGrowth: .milliseconds(2))
        #expect(estimator.usage == .overusing)
        #expect(estimator.estimate < 1_000_000)
    }

    @Test("heavy loss brings the estimate down; light loss does not")
    func loss() {
        var heavy = BandwidthEstimator(initial: 2_000_000)
        Self.feed(&heavy, seconds: 3, lossEvery: 5)
        #expect(heavy.estimate < 1_000_000)
        var light = BandwidthEstimator(initial: 1_000_000)
        Self.feed(&light, seconds: 3, lossEvery: 100)
        #expect(light.estimate >= 1_200_000)
    }
}

@Suite("Bandwidth prober")
struct BandwidthProberTests {
    @Test("no probe while the estimate covers what is wanted, or while congested")
    func quiet() {
        var prober = BandwidthProber()
        let whileCovered = prober.cluster(wanted: 1_000_000, estimate: 2_000_000, overusing: false, packetSize: 1200, now: .seconds(5))
        #expect(whileCovered == nil)
        let whileCongested = prober.cluster(wanted: 3_000_000, estimate: 2_000_000, overusing: true, packetSize: 1200, now: .seconds(5))
        #expect(whileCongested == nil)
    }

    @Test("a burst that arrives spread out measures the bottleneck but fails; backoff doubles")
    func bottleneck() throws {
        var prober = BandwidthProber()
        let clusterValue = prober.cluster(wanted: 2_000_000, estimate: 500_000, overusing: false, packetSize: 1200, now: .seconds(10))
        let cluster = try #require(clusterValue)
        #expect(cluster.packets == 9)
        let overlapping = prober.cluster(wanted: 2_000_000, estimate: 500_000, overusing: false, packetSize: 1200, now: .seconds(10))
        #expect(overlapping == nil)
        // 1 Mbps bottleneck: 1200 bytes every 9.6 ms.
        for index in 0..<cluster.packets {
            prober.record(cluster: cluster.id, arrival: .seconds(10) + .microseconds(9600 * index), size: 1200)
        }
        let measured = prober.verdict(now: .seconds(10) + .milliseconds(150))
        let firstVerdict = try #require(measured)
        #expect(abs(firstVerdict - 1_000_000) < 10_000)
        #expect(prober.failed == 1)
        let tooSoon = prober.cluster(wanted: 2_000_000, estimate: 500_000, overusing: false, packetSize: 1200, now: .seconds(11))
        #expect(tooSoon == nil)
        let secondValue = prober.cluster(wanted: 2_000_000, estimate: 500_000, overusing: false, packetSize: 1200, now: .milliseconds(12_200))
        let second = try #require(secondValue)
        let secondVerdict = prober.verdict(now: .milliseconds(12_700))
        #expect(secondVerdict == nil)
        #expect(prober.failed == 2)
        let stillBackingOff = prober.cluster(wanted: 2_000_000, estimate: 500_000, overusing: false, packetSize: 1200, now: .milliseconds(16_600))
        #expect(stillBackingOff == nil)
        #expect(second.id != cluster.id)
    }

    @Test("a burst that arrives together proves the target")
    func clear() throws {
        var prober = BandwidthProber()
        let clusterValue = prober.cluster(wanted: 2_000_000, estimate: 500_000, overusing: false, packetSize: 1200, now: .seconds(3))
        let cluster = try #require(clusterValue)
        for index in 0..<cluster.packets {
            prober.record(cluster: cluster.id, arrival: .seconds(3) + .microseconds(50 * index), size: 1200)
        }
        let provenValue = prober.verdict(now: .seconds(3) + .milliseconds(120))
        let proven = try #require(provenValue)
        #expect(proven == cluster.target)
        #expect(prober.succeeded == 1)
    }
}

/// What one `forward` made, with the packet as bytes for parsing in assertions.
struct Forwarded {
    var bytes: [UInt8]?
    var keyframeNeeded: Int?
}

extension Consumer {
    /// `forward` into a slot of its own, as the transport's send batch gives one.
    func forward(_ arrival: Producer.Arrival, bestLayer: Int, now: Duration) -> Forwarded {
        var slot = [UInt8](repeating: 0, count: capacity(for: arrival))
        let output = slot.withUnsafeMutableBytes { forward(arrival, bestLayer: bestLayer, now: now, into: $0) }
        return Forwarded(bytes: output.length.map { Array(slot[..<$0]) }, keyframeNeeded: output.keyframeNeeded)
    }
}

@Suite("Publisher layers: pausing simulcast layers nobody consumes")
struct PublisherLayerPolicyTests {
    let measured = [true, true, true]

    @Test("layers above every consumer's want are paused only after the hold-down")
    func pausesAfterHoldDown() {
        var policy = PublisherLayerPolicy<String>()
        #expect(policy.evaluate(producer: "p", measured: measured, wanted: [2, 0], now: .zero) == nil)
        #expect(policy.evaluate(producer: "p", measured: measured, wanted: [1, 0], now: .seconds(1)) == nil)
        #expect(policy.evaluate(producer: "p", measured: measured, wanted: [1, 0], now: .seconds(5)) == nil)
        #expect(policy.evaluate(producer: "p", measured: measured, wanted: [1], now: .seconds(6)) == [true, true, false])
        #expect(policy.sending("p") == [true, true, false])
        #expect(policy.evaluate(producer: "p", measured: measured, wanted: [1], now: .seconds(20)) == nil)
    }

    @Test("a want that comes back within the hold-down cancels the pause")
    func wavering() {
        var policy = PublisherLayerPolicy<String>()
        #expect(policy.evaluate(producer: "p", measured: measured, wanted: [0], now: .zero) == nil)
        #expect(policy.evaluate(producer: "p", measured: measured, wanted: [2], now: .seconds(3)) == nil)
        #expect(policy.evaluate(producer: "p", measured: measured, wanted: [0], now: .seconds(6)) == nil)
        #expect(policy.evaluate(producer: "p", measured: measured, wanted: [0], now: .seconds(11)) == [true, false, false])
    }

    @Test("a layer wanted again is resumed at once")
    func resumesAtOnce() {
        var policy = PublisherLayerPolicy<String>()
        _ = policy.evaluate(producer: "p", measured: measured, wanted: [], now: .zero)
        #expect(policy.evaluate(producer: "p", measured: measured, wanted: [], now: .seconds(5)) == [true, false, false])
        #expect(policy.evaluate(producer: "p", measured: measured, wanted: [2], now: .seconds(5.5)) == [true, true, true])
    }

    @Test("the lowest layer always stays, and a layer never measured is not touched")
    func lowestAndUnmeasured() {
        var policy = PublisherLayerPolicy<String>()
        _ = policy.evaluate(producer: "p", measured: [true, true, false], wanted: [], now: .zero)
        #expect(policy.evaluate(producer: "p", measured: [true, true, false], wanted: [], now: .seconds(5)) == [true, false, true])
        policy.remove(producer: "p")
        #expect(policy.sending("p") == nil)
    }

    @Test("a paused layer stays selectable at its last bitrate, so allocation can ask for it back")
    func selectable() {
        let producer = Producer(id: Publisher.producerID, media: Publisher.media)
        for (index, ms) in stride(from: 0, to: 700, by: 33).enumerated() {
            for rid in ["l", "m", "h"] { _ = producer.receive(Publisher.packet(rid: rid, sequence: UInt16(index)), now: .milliseconds(ms)) }
        }
        #expect(producer.selectableLayers(now: .milliseconds(700)) == [0, 1, 2])
        #expect(producer.layers[2].bitrate > 0)
        producer.layersSentByPublisher = [true, true, false]
        // Only the lower layers keep arriving; the top stops being active after a second.
        for (index, ms) in stride(from: 700, to: 2000, by: 33).enumerated() {
            for rid in ["l", "m"] { _ = producer.receive(Publisher.packet(rid: rid, sequence: UInt16(21 + index)), now: .milliseconds(ms)) }
        }
        #expect(producer.activeLayers(now: .milliseconds(2000)) == [0, 1])
        #expect(producer.selectableLayers(now: .milliseconds(2000)) == [0, 1, 2])
        producer.layersSentByPublisher = nil
        #expect(producer.selectableLayers(now: .milliseconds(2000)) == [0, 1])
    }
}

@Suite("Receive-side estimate for REMB-only publishers")
struct ReceiveSideEstimateTests {
    @Test("climbs while nothing is lost and the publisher uses it, up to the ceiling")
    func climbs() {
        var estimate = ReceiveSideEstimate()
        var incoming = 500_000.0
        var sent: [UInt64] = []
        for _ in 0..<12 {
            let remb = estimate.update(incoming: incoming, loss: 0)
            sent.append(remb)
            incoming = Double(remb) * 0.95
        }
        #expect(sent[0] == 625_000)
        #expect(zip(sent, sent.dropFirst()).allSatisfy { $0 <= $1 })
        #expect(sent.last == UInt64(ReceiveSideEstimate.ceiling))
    }

    @Test("holds while the publisher sends far less than it may")
    func holdsWhenApplicationLimited() {
        var estimate = ReceiveSideEstimate()
        _ = estimate.update(incoming: 1_000_000, loss: 0)
        #expect(estimate.update(incoming: 200_000, loss: 0) == 1_250_000)
    }

    @Test("falls in proportion to heavy loss, never below the floor, and holds on light loss")
    func fallsOnLoss() {
        var estimate = ReceiveSideEstimate()
        _ = estimate.update(incoming: 2_000_000, loss: 0)
        #expect(estimate.update(incoming: 2_000_000, loss: 0.05) == 2_500_000)
        #expect(estimate.update(incoming: 2_000_000, loss: 0.2) == 1_800_000)
        #expect(estimate.update(incoming: 100_000, loss: 0.5) == UInt64(ReceiveSideEstimate.floor))
    }
}

@Suite("Bandwidth allocation, as a pure decision")
struct BandwidthAllocatorTests {
    static let layers = [100_000.0, 300_000, 900_000]

    static func video(current: Int? = nil, preferred: Int? = nil) -> BandwidthAllocator.Request {
        BandwidthAllocator.Request(kind: .video, layerBitrates: layers, selectable: [0, 1, 2], isSimulcast: true,
                                   currentLayer: current, preferredLayer: preferred)
    }

    static let audio = BandwidthAllocator.Request(kind: .audio, layerBitrates: [32_000], selectable: [0], isSimulcast: false,
                                                  currentLayer: 0, preferredLayer: nil)

    @Test("audio is served first, at 64 kbit/s at least; video pauses, saying what was left")
    func audioFirst() {
        let allocation = BandwidthAllocator.allocate([Self.video(current: 0), Self.audio], estimate: 150_000)
        #expect(allocation.decisions == [.pause(.bandwidth(available: 86_000, lowestLayer: 100_000)), .unchanged])
        #expect(allocation.heldBelowBest == [0])
        #expect(allocation.wanted == 64_000 + 900_000 * 1.25)
    }

    @Test("climbing a layer needs 25 % headroom; staying on one needs none")
    func headroom() {
        let climbing = BandwidthAllocator.allocate([Self.video(current: 0)], estimate: 1_000_000)
        #expect(climbing.decisions == [.target(layer: 1)] && climbing.heldBelowBest == [0])
        let staying = BandwidthAllocator.allocate([Self.video(current: 2)], estimate: 950_000)
        #expect(staying.decisions == [.target(layer: 2)] && staying.heldBelowBest.isEmpty && staying.wanted == 900_000)
    }

    @Test("later consumers get what the earlier left; a preference caps; a single layer is left alone")
    func sharing() {
        let single = BandwidthAllocator.Request(kind: .video, layerBitrates: [500_000], selectable: [0], isSimulcast: false,
                                                currentLayer: 0, preferredLayer: nil)
        let allocation = BandwidthAllocator.allocate([Self.video(current: 2), Self.video(current: 1, preferred: 1), single], estimate: 1_300_000)
        #expect(allocation.decisions == [.target(layer: 2), .target(layer: 1), .unchanged])
        #expect(allocation.heldBelowBest.isEmpty)
    }

    @Test("a consumer's target and preference both cap what it forwards")
    func consumerLayers() {
        let consumer = Consumer(id: "c", producerID: Publisher.producerID, media: ConsumerTests.subscriberMedia, outgoing: ConsumerTests.subscriberMedia.localStream!)
        #expect(consumer.wantedLayer(best: 2) == 2)
        consumer.apply(.target(layer: 1))
        #expect(consumer.wantedLayer(best: 2) == 1 && consumer.targetLayer == 1)
        consumer.preferredLayer = 0
        #expect(consumer.wantedLayer(best: 2) == 0)
        consumer.apply(.pause(.bandwidth(available: 1, lowestLayer: 2)))
        #expect(consumer.isPaused && consumer.pauseReason == .bandwidth(available: 1, lowestLayer: 2))
    }
}
