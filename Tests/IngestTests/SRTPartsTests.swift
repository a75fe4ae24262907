import MediaCodecs
import Testing

@testable import Ingest

@Suite struct SRTPartsTests {
    func parts(_ text: String) -> [String]? {
        SRTStreamID(text).map { [$0.app, $0.key, $0.mode] }
    }

    @Test func streamIDsInEveryFormEncodersUse() {
        #expect(parts("#!::r=live/abc,m=publish") == ["live", "abc", "publish"])
        #expect(parts("#!::m=publish,r=live/abc") == ["live", "abc", "publish"])
        #expect(SRTStreamID("#!::r=live/abc")?.mode == "request")
        #expect(SRTStreamID("#!::r=abc,m=request,u=someone")?.key == "abc")
        #expect(parts("live/abc") == ["live", "abc", "publish"])
        #expect(parts("abc") == ["live", "abc", "publish"])
        #expect(SRTStreamID("#!::m=publish") == nil)
        #expect(SRTStreamID("#!::r") == nil)
        #expect(SRTStreamID("a/b/c") == nil)
    }

    @Test func adtsHeadersGiveTheAudioSpecificConfig() {
        // AAC-LC, 48 kHz, stereo, no CRC, a 10-byte frame.
        let frame: [UInt8] = [0xFF, 0xF1, 0x4C, 0x80, 0x01, 0x5F, 0xFC, 0xAA, 0xBB, 0xCC]
        let header = ADTSFrame(frame)
        #expect(header?.config.sampleRate == 48000 && header?.config.channels == 2 && header?.headerSize == 7 && header?.length == 10)
        #expect(header?.config.bytes == [0x11, 0x90])
        #expect(ADTSFrame(Array(frame.prefix(6))) == nil)
        #expect(ADTSFrame([0xFF, 0xF1, 0x7C, 0x80, 0x01, 0x5F, 0xFC, 0xAA, 0xBB, 0xCC]) == nil)
    }
}

extension SRTPartsTests {
    @Test func tsPacketsWaitUntilBothTracksAreKnown() {
        var streams = TSElementaryStreams()
        let sps: [UInt8] = [0, 0, 0, 1, 0x67, 0x42, 0, 0x1F], pps: [UInt8] = [0, 0, 0, 1, 0x68, 0xCE]
        let keyframe = ContainerReader.Packet(codec: .h264, data: sps + pps + [0, 0, 0, 1, 0x65, 1], pts: 0, dts: 0, isKeyframe: true)
        #expect(streams.take(keyframe).isEmpty, "held: no audio seen yet")
        #expect(streams.video?.parameterSets == sps + pps)
        let adts: [UInt8] = [0xFF, 0xF1, 0x4C, 0x80, 0x01, 0x5F, 0xFC, 0xAA, 0xBB, 0xCC]
        let released = streams.take(ContainerReader.Packet(codec: .aac, data: adts, pts: 10_000, dts: 10_000, isKeyframe: true))
        #expect(released.count == 3)
        guard released.count == 3, case .tracks = released[0], case .packet(let picture) = released[1], case .packet(let sound) = released[2] else {
            Issue.record("expected tracks, the held picture, then the sound")
            return
        }
        #expect(picture.kind == .video && sound.kind == .audio && sound.data == [0xAA, 0xBB, 0xCC])
        // A keyframe without its parameter sets gets them.
        let bare = streams.take(ContainerReader.Packet(codec: .h264, data: [0, 0, 0, 1, 0x65, 2], pts: 33_000, dts: 33_000, isKeyframe: true))
        guard case .packet(let fixed)? = bare.first else {
            Issue.record("no packet")
            return
        }
        #expect(fixed.data == sps + pps + [0, 0, 0, 1, 0x65, 2])
    }

    @Test func videoWithoutAudioGoesOutAfterASecond() {
        var streams = TSElementaryStreams()
        let frame: [UInt8] = [0, 0, 0, 1, 0x67, 0x42, 0, 0x1F, 0, 0, 0, 1, 0x68, 0xCE, 0, 0, 0, 1, 0x65, 1]
        var released: [ElementaryOutput] = []
        for index in 0..<40 {
            released += streams.take(ContainerReader.Packet(codec: .h264, data: frame, pts: Int64(index) * 33_333, dts: Int64(index) * 33_333, isKeyframe: true))
        }
        #expect(released.count == 41, "all 40 pictures and one track announcement")
        #expect(streams.audio == nil)
        let av1 = streams.take(ContainerReader.Packet(codec: .other("av1"), data: [1], pts: 0, dts: 0, isKeyframe: true))
        #expect(av1.isEmpty && streams.unsupportedVideo?.contains("av1") == true)
    }
}

@Suite struct LadderTests {
    @Test func renditionsKeepTheSourcesShapeAtAnEvenWidth() {
        let rung = Rendition.named("360p30")!
        #expect(rung.width(forSource: 1920, height: 1080) == 640)
        #expect(rung.width(forSource: 854, height: 480) == 640)
        #expect(rung.width(forSource: 1080, height: 1920) == 202)
        #expect(rung.width(forSource: 0, height: 0) == 640)
        #expect(Rendition.named("4k") == nil && Rendition.all.first?.name == "1080p60")
    }
}
