import FLV
import Foundation
import Logging
import MediaCodecs
import RTP
import Testing

@testable import Ingest

@Suite struct RTPElementaryStreamTests {
    static let sps: [UInt8] = [0x67, 0x64, 0x00, 0x1F, 0xAC]
    static let pps: [UInt8] = [0x68, 0xEE, 0x3C, 0x80]

    static func packet(_ sequence: UInt16, _ timestamp: UInt32, marker: Bool = false, payloadType: UInt8 = 102, _ payload: [UInt8]) throws -> RTPPacket {
        var builder = RTPPacketBuilder(payloadType: payloadType, sequenceNumber: sequence, timestamp: timestamp, ssrc: 42)
        builder.marker = marker
        builder.payload = payload
        return try RTPPacket(builder.serialize())
    }

    /// One 20 ms Opus packet: CELT fullband stereo, a frame of no bytes (decoded as silence).
    static func opus(_ sequence: UInt16, _ timestamp: UInt32) throws -> RTPPacket {
        try packet(sequence, timestamp, payloadType: 111, [0xFC])
    }

    static func packets(_ outputs: [ElementaryOutput], _ kind: ProgramPacket.Kind) -> [ProgramPacket] {
        outputs.compactMap { if case .packet(let packet) = $0, packet.kind == kind { packet } else { nil } }
    }

    @Test func pictureAndSoundComeOutTogetherOnTheArrivalClock() throws {
        var streams = RTPElementaryStreams()
        let asked = streams.takeKeyframeRequest()
        let askedAgain = streams.takeKeyframeRequest()
        #expect(asked && !askedAgain)
        // Sound alone is held: outputs open once, with both tracks.
        var outputs: [ElementaryOutput] = []
        for index in 0..<5 {
            outputs += try streams.audio(try Self.opus(UInt16(index), 48_000 + UInt32(index) * 960), arrival: 50_000 + Int64(index) * 20_000)
        }
        #expect(outputs.isEmpty && streams.audio?.sampleRate == 48_000)

        // A keyframe: SPS and PPS in a STAP-A, the IDR slice in two FU-A fragments.
        let stap = [24] + [0, UInt8(Self.sps.count)] + Self.sps + [0, UInt8(Self.pps.count)] + Self.pps
        outputs += streams.video(try Self.packet(500, 9000, stap), arrival: 100_000)
        outputs += streams.video(try Self.packet(501, 9000, [0x7C, 0x85, 1, 2]), arrival: 100_000)
        #expect(outputs.isEmpty)
        outputs += streams.video(try Self.packet(502, 9000, marker: true, [0x7C, 0x45, 3]), arrival: 101_000)
        guard case .tracks = outputs.first else {
            Issue.record("the tracks come first: \(outputs)")
            return
        }
        #expect(streams.video?.parameterSets == [0, 0, 0, 1] + Self.sps + [0, 0, 0, 1] + Self.pps)
        let keyframe = try #require(Self.packets(outputs, .video).first)
        #expect(keyframe.isKeyframe && keyframe.pts == 101_000 && keyframe.dts == keyframe.pts)
        #expect(keyframe.data == [0, 0, 0, 1] + Self.sps + [0, 0, 0, 1] + Self.pps + [0, 0, 0, 1, 0x65, 1, 2, 3])
        let sound = Self.packets(outputs, .audio)
        #expect(!sound.isEmpty && sound.first!.pts >= 50_000)

        // The next picture follows the RTP clock (3000 ticks = 33.3 ms), not its arrival.
        let delta = Self.packets(streams.video(try Self.packet(503, 12000, marker: true, [0x41, 9]), arrival: 190_000), .video)
        #expect(delta.count == 1 && delta[0].pts == 134_333 && !delta[0].isKeyframe && delta[0].data == [0, 0, 0, 1, 0x41, 9])

        // A lost Opus packet is filled with silence: AAC frames stay 1024 samples apart.
        var aac: [ProgramPacket] = sound
        for index in [5, 7, 8, 9, 10, 11] {
            aac += Self.packets(try streams.audio(try Self.opus(UInt16(index), 48_000 + UInt32(index) * 960), arrival: 150_000 + Int64(index) * 20_000), .audio)
        }
        let steps = zip(aac, aac.dropFirst()).map { $1.pts - $0.pts }
        #expect(aac.count >= 6 && steps.allSatisfy { abs($0 - 21_333) <= 1 }, "\(steps)")
    }

    @Test func aLostPacketThatNeverComesAsksForAKeyframe() throws {
        var streams = RTPElementaryStreams()
        _ = streams.takeKeyframeRequest()
        let stap = [24] + [0, UInt8(Self.sps.count)] + Self.sps + [0, UInt8(Self.pps.count)] + Self.pps
        _ = streams.video(try Self.packet(1, 0, stap), arrival: 0)
        _ = streams.video(try Self.packet(2, 0, marker: true, [0x65, 1]), arrival: 0)
        let askedAfterKeyframe = streams.takeKeyframeRequest()
        #expect(!askedAfterKeyframe)
        // Packet 3 is lost for good; what follows cannot be decoded without a new keyframe.
        _ = streams.video(try Self.packet(4, 3000, marker: true, [0x41, 1]), arrival: 33_000)
        let late = streams.video(try Self.packet(5, 6000, marker: true, [0x41, 2]), arrival: 400_000)
        let asked = streams.takeKeyframeRequest()
        let dropped = streams.takeDropped()
        #expect(late.isEmpty && asked && dropped >= 1 && streams.takeDropped() == 0)
    }

    @Test func rtpClocksUnwrapAndFollowTheSenderUntilItJumps() {
        var clock = RTPClock(rate: 90_000)
        #expect(clock.time(of: clock.unwrap(UInt32.max - 1499), arrival: 1_000_000) == 1_000_000)
        #expect(clock.time(of: clock.unwrap(1500), arrival: 1_040_000) == 1_033_333)
        // A timestamp from well before (a reordered packet) stays behind the newest.
        #expect(clock.unwrap(UInt32.max - 2999) == Int64(UInt32.max) - 2999)
        // The sender restarted its clock: anchored again on arrival.
        #expect(clock.time(of: clock.unwrap(1500 + 90_000 * 60), arrival: 2_000_000) == 2_000_000)
    }
}

@Suite struct PublisherDropsTests {
    @Test func dropsAPublisherReportsShowOnTheStreamUntilItIsReplaced() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tally-drops-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let hub = IngestHub(hlsRoot: root, logger: Logger(label: "test")) { _ in .allow(streamID: "show") }
        hub.start("show")
        let request = IngestRequest(transport: .whip, app: "live", streamKey: "k", remoteAddress: "127.0.0.1")
        guard case .success(let first) = hub.attach(streamID: "show", settings: IngestSettings(), request: request, close: { _ in }) else {
            Issue.record("not attached")
            return
        }
        first.noteDropped(frames: 3)
        #expect(hub.stream("show")?.snapshot.droppedFrames == 3)
        _ = hub.attach(streamID: "show", settings: IngestSettings(), request: request, close: { _ in })
        first.noteDropped(frames: 5)
        #expect(hub.stream("show")?.snapshot.droppedFrames == 3, "a replaced publisher speaks for nothing")
        hub.shutdown()
    }
}
