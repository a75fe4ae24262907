import FLV
import RTP
import SDP
import Testing
@testable import SFU

/// A VP8 keyframe's first packet declaring `width`×`height`: payload descriptor, frame tag,
/// start code, then the sizes (RFC 6386 §9.1).
private func vp8Keyframe(rid: String, sequence: UInt16, width: Int, height: Int) -> RTPPacket {
    var builder = RTPPacketBuilder(payloadType: 96, sequenceNumber: sequence, timestamp: UInt32(sequence) * 3000, ssrc: Publisher.ssrcs[rid]!)
    builder.extensions = [(4, Array("1".utf8)), (10, Array(rid.utf8))]
    builder.payload = [0x10, 0x00, 0x02, 0x00, 0x9D, 0x01, 0x2A,
                       UInt8(width & 0xFF), UInt8(width >> 8), UInt8(height & 0xFF), UInt8(height >> 8), 0xAB]
    return try! RTPPacket(builder.serialize())
}

@Suite("The program's tap: the smallest simulcast layer that fills a tile")
struct TapLayerTests {
    @Test("a VP8 keyframe's header and an H.264 SPS (alone or in a STAP-A) give the picture size")
    func keyframeSizes() throws {
        #expect(KeyframeSize.of(vp8Keyframe(rid: "m", sequence: 1, width: 640, height: 360), codec: "VP8") == PictureSize(width: 640, height: 360))
        // The top two bits of each size are VP8's scaling, not size.
        #expect(KeyframeSize.of(vp8Keyframe(rid: "m", sequence: 1, width: 0xC000 | 1280, height: 0x4000 | 720), codec: "VP8") == PictureSize(width: 1280, height: 720))
        // A delta frame, and a keyframe cut short, say nothing.
        #expect(KeyframeSize.of(Publisher.packet(rid: "m", sequence: 1), codec: "VP8") == nil)
        #expect(KeyframeSize.of(Publisher.packet(rid: "m", sequence: 1, keyframe: true), codec: "VP8") == nil)

        // x264's SPS for 640×360 (baseline).
        let sps: [UInt8] = [0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x00, 0xA0, 0x2F, 0xF9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01,
                            0x00, 0x00, 0x03, 0x00, 0x3C, 0x0F, 0x16, 0x2E, 0x48]
        func h264(_ payload: [UInt8]) throws -> RTPPacket {
            var builder = RTPPacketBuilder(payloadType: 102, sequenceNumber: 1, timestamp: 0, ssrc: 5)
            builder.payload = payload
            return try RTPPacket(builder.serialize())
        }
        #expect(KeyframeSize.of(try h264(sps), codec: "H264") == PictureSize(width: 640, height: 360))
        let pps: [UInt8] = [0x68, 0xCB, 0x83, 0xCB, 0x20]
        let stapA = [0x18] + [0, UInt8(sps.count)] + sps + [0, UInt8(pps.count)] + pps
        #expect(KeyframeSize.of(try h264(stapA), codec: "H264") == PictureSize(width: 640, height: 360))
        #expect(KeyframeSize.of(try h264([0x18, 0, 5] + pps), codec: "H264") == nil)
        #expect(KeyframeSize.of(try h264([0x18, 0, 99] + sps), codec: "H264") == nil)
        #expect(KeyframeSize.of(try h264([0x65, 0x88]), codec: "H264") == nil)
    }

    @Test("the smallest layer whose picture fills the tile, allowing 10 % upscaling; the best without sizes or a tile")
    func choice() {
        let sizes: [PictureSize?] = [PictureSize(width: 320, height: 180), PictureSize(width: 640, height: 360), PictureSize(width: 1280, height: 720)]
        #expect(TileSize.layer(for: TileSize(width: 608, height: 342), among: [0, 1, 2], size: { sizes[$0] }) == 1)
        #expect(TileSize.layer(for: TileSize(width: 700, height: 394), among: [0, 1, 2], size: { sizes[$0] }) == 1)
        #expect(TileSize.layer(for: TileSize(width: 720, height: 405), among: [0, 1, 2], size: { sizes[$0] }) == 2)
        #expect(TileSize.layer(for: TileSize(width: 300, height: 170), among: [0, 1, 2], size: { sizes[$0] }) == 0)
        #expect(TileSize.layer(for: TileSize(width: 0, height: 0), among: [0, 1, 2], size: { sizes[$0] }) == 0)
        // A tile larger than every layer, or a layer not arriving now: the best of what comes.
        #expect(TileSize.layer(for: TileSize(width: 1920, height: 1080), among: [0, 1, 2], size: { sizes[$0] }) == 2)
        #expect(TileSize.layer(for: TileSize(width: 608, height: 342), among: [0, 2], size: { sizes[$0] }) == 2)
        // A tall tile (a 9:16 slot) needs the height, whatever the width.
        #expect(TileSize.layer(for: TileSize(width: 300, height: 600), among: [0, 1, 2], size: { sizes[$0] }) == 2)
        // Sizes not known yet, and no tile at all: the best.
        #expect(TileSize.layer(for: TileSize(width: 608, height: 342), among: [0, 1, 2], size: { _ in nil }) == 2)
        #expect(TileSize.layer(for: nil, among: [0, 1, 2], size: { sizes[$0] }) == 2)
        #expect(TileSize.layer(for: TileSize(width: 608, height: 342), among: [], size: { sizes[$0] }) == nil)
    }

    @Test("a grid tile gets the middle layer, switching on its keyframe; a full-screen tile moves it to the top; the publisher keeps sending what the tap needs")
    func tapFollowsItsTile() {
        final class Seen: @unchecked Sendable {
            var packets: [(layer: UInt32, changed: Bool)] = []
            var layersAsked: [[Bool]] = []
        }
        let seen = Seen()
        let router = Router(id: "b", onPublisherLayers: { _, sending in seen.layersAsked.append(sending) })
        var keyframesAsked: [Int] = []
        let producer = Producer(id: Publisher.producerID, media: Publisher.media)
        router.add(producer, onKeyframeRequest: { keyframesAsked.append($0) })
        router.add(ProducerTap(participantID: Publisher.producerID.participant, tile: TileSize(width: 608, height: 342)) { packet in
            seen.packets.append((packet.packet.ssrc, packet.layerChanged))
        })
        let transport = RecordingTransport()
        var sequence: UInt16 = 0
        var ms = 0
        func send(_ rid: String, keyframe: Bool = false) {
            sequence &+= 1
            ms += 10
            let size = ["l": (320, 180), "m": (640, 360), "h": (1280, 720)][rid]!
            let packet = keyframe ? vp8Keyframe(rid: rid, sequence: sequence, width: size.0, height: size.1)
                : Publisher.packet(rid: rid, sequence: sequence, timestamp: UInt32(sequence) * 3000)
            let arrival = producer.receive(packet, now: .milliseconds(ms))!
            router.route(arrival, from: producer, transport: transport, now: .milliseconds(ms))
        }
        // Sizes are not known before keyframes: the tap waits for the top layer's.
        send("h")
        #expect(seen.packets.isEmpty && keyframesAsked == [2])
        // The middle layer's keyframe shows that it fills the tile: the tap starts on it there.
        for rid in ["l", "m", "h"] { send(rid, keyframe: true) }
        send("h")
        send("m")
        let middle = Publisher.ssrcs["m"]!
        #expect(seen.packets.last.map { $0.layer == middle } == true)
        #expect(seen.packets.contains { $0.layer == middle && $0.changed })
        #expect(!seen.packets.drop { $0.layer != middle || !$0.changed }.contains { $0.layer != middle })

        // Nothing else consumes: the publisher is still asked to send up to the tap's layer.
        router.tick(now: .milliseconds(ms))
        #expect(seen.layersAsked.isEmpty)
        ms += 6000
        send("m")
        router.tick(now: .milliseconds(ms))
        #expect(seen.layersAsked.last == [true, true, false])

        // Full screen: the top layer is needed again, asked for at once, taken from its keyframe.
        let before = seen.packets.count
        router.fit(tapOf: Publisher.producerID.participant, to: TileSize(width: 1280, height: 720), now: .milliseconds(ms))
        #expect(keyframesAsked.last == 2)
        send("h", keyframe: true)
        send("h")
        #expect(seen.packets[before...].contains { $0.layer == Publisher.ssrcs["h"]! && $0.changed })
        #expect(seen.packets.last?.layer == Publisher.ssrcs["h"]!)
        ms += 600
        send("h")
        router.tick(now: .milliseconds(ms))
        #expect(seen.layersAsked.last == [true, true, true])
    }

    @Test("the program's tap and the server's copy take one participant side by side; only the program's asks for a relay")
    func purposes() {
        let router = Router(id: "b")
        let producer = Producer(id: Publisher.producerID, media: Publisher.media)
        router.add(producer, onKeyframeRequest: { _ in })
        final class Counts: @unchecked Sendable { var program = 0, recording = 0 }
        let counts = Counts()
        let participant = Publisher.producerID.participant
        router.add(ProducerTap(participantID: participant, purpose: .program, tile: TileSize(width: 300, height: 170)) { _ in counts.program += 1 })
        router.add(ProducerTap(participantID: participant, purpose: .recording) { _ in counts.recording += 1 })
        let transport = RecordingTransport()
        for (sequence, rid) in ["l", "m", "h"].enumerated() {
            let arrival = producer.receive(vp8Keyframe(rid: rid, sequence: UInt16(sequence + 1), width: 320 << (sequence), height: 180 << sequence), now: .milliseconds(10))!
            router.route(arrival, from: producer, transport: transport, now: .milliseconds(10))
        }
        // The program keeps the low layer for its small tile; the copy moves up to the best as each layer starts.
        #expect(counts.program == 1 && counts.recording == 3)
        // Media made in the server is nobody's to copy.
        #expect(router.participantsPublishingHere.isEmpty)
        router.remove(producer: Publisher.producerID)
        #expect(router.tappedWithoutProducers == [participant])
        router.removeTap(participant: participant, purpose: .program)
        #expect(router.tappedWithoutProducers.isEmpty && !router.isEmpty)
        router.removeTap(participant: participant, purpose: .recording)
        #expect(router.isEmpty)
    }
}
