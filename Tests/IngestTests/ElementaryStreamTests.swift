import FLV
import MediaCodecs
import Testing

@testable import Ingest

@Suite struct ElementaryStreamTests {
    let parameterSets: [UInt8] = [0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1F, 0xAC, 0, 0, 0, 1, 0x68, 0xEE, 0x3C, 0x80]

    @Test func keyframesCarryTheirParameterSetsAndTimesBecomeMicroseconds() throws {
        var streams = FLVElementaryStreams()
        streams.metadata(["width": .number(1920), "height": .number(1080), "framerate": .number(60)])
        // A frame before any sequence header has nothing to describe it: dropped.
        #expect(try streams.video(timestamp: 0, body: FLVVideo.avcFrame(annexB: [0, 0, 0, 1, 0x65, 1], keyframe: true)).isEmpty)
        let header = try streams.video(timestamp: 0, body: FLVVideo.avcSequenceHeader(parameterSets: parameterSets))
        #expect(header.count == 1)
        #expect(streams.video?.width == 1920 && streams.video?.height == 1080 && streams.video?.framesPerSecond == 60)
        // The same header again changes nothing.
        #expect(try streams.video(timestamp: 0, body: FLVVideo.avcSequenceHeader(parameterSets: parameterSets)).isEmpty)
        let outputs = try streams.video(timestamp: 1000, body: FLVVideo.avcFrame(annexB: [0, 0, 0, 1, 0x65, 1, 2], keyframe: true, compositionTime: 66))
        guard case .packet(let keyframe) = outputs.first else {
            Issue.record("no packet")
            return
        }
        #expect(keyframe.data == parameterSets + [0, 0, 0, 1, 0x65, 1, 2])
        #expect(keyframe.dts == 1_000_000 && keyframe.pts == 1_066_000 && keyframe.isKeyframe)
        guard case .packet(let delta) = try streams.video(timestamp: 1033, body: FLVVideo.avcFrame(annexB: [0, 0, 0, 1, 0x41, 9], keyframe: false)).first else {
            Issue.record("no packet")
            return
        }
        #expect(delta.data == [0, 0, 0, 1, 0x41, 9] && !delta.isKeyframe)
    }

    @Test func aacConfigurationsDescribeRateAndChannels() throws {
        for (bytes, rate, channels) in [([UInt8]([0x11, 0x90]), 48000, 2), ([0x12, 0x10], 44100, 2), ([0x12, 0x08], 44100, 1)] {
            let config = try AACConfig(audioSpecificConfig: bytes)
            #expect(config.sampleRate == rate && config.channels == channels)
            #expect(AACConfig(objectType: 2, rateIndex: AACConfig.sampleRates.firstIndex(of: rate)!, channelConfiguration: channels)?.bytes == bytes)
        }
        #expect(throws: FLVError.self) { try AACConfig(audioSpecificConfig: [0x17, 0x80]) }
        #expect(throws: FLVError.self) { try AACConfig(audioSpecificConfig: [0x17]) }
        var streams = FLVElementaryStreams()
        #expect(try streams.audio(timestamp: 5, body: FLVAudio.aacSequenceHeader(audioSpecificConfig: [0x11, 0x90])).count == 1)
        guard case .packet(let frame) = try streams.audio(timestamp: 21, body: FLVAudio.aacFrame([1, 2, 3])).first else {
            Issue.record("no packet")
            return
        }
        #expect(frame.kind == .audio && frame.data == [1, 2, 3] && frame.dts == 21_000)
    }

    /// A sequence header OBU (reduced still-picture form): profile 0, level 8, 320×240, 8-bit 4:2:0.
    static let av1SequenceHeader: [UInt8] = [0x0A, 0x07, 0x1A, 0x22, 0x27, 0xEE, 0xF0, 0x00, 0x20]

    @Test func av1SequenceHeadersDescribeThePictureAndMakeTheRecord() throws {
        let header = try #require(AV1SequenceHeader(obu: Self.av1SequenceHeader[...]))
        #expect(header.profile == 0 && header.level == 8 && header.tier == 0 && header.bitDepth == 8)
        #expect(header.width == 320 && header.height == 240 && header.subsamplingX == 1 && header.subsamplingY == 1)
        let configuration = try #require(AV1CodecConfiguration(sequenceHeaderOBU: Self.av1SequenceHeader[...]))
        #expect(configuration.record == [0x81, 0x08, 0x0C, 0x00] + Self.av1SequenceHeader)
        #expect(CodecString.av1(configuration) == "av01.0.08M.08")
        #expect(try AV1CodecConfiguration.parse(configuration.record[...]) == configuration)
        #expect(throws: FLVError.self) { try AV1CodecConfiguration.parse([0x81, 0, 0][...]) }
        #expect(throws: FLVError.self) { try AV1CodecConfiguration.parse([0x01, 0, 0, 0][...]) }
        // A size running past the end is no OBU; cut short, the header is no header.
        #expect(AV1.obus([0x12, 0x05, 1, 2][...]) == nil)
        #expect(AV1SequenceHeader(obu: Self.av1SequenceHeader.prefix(5)) == nil)
        let vp9 = VP9CodecConfiguration(profile: 0, level: 31, bitDepth: 8)
        #expect(CodecString.vp9(vp9) == "vp09.00.31.08")
        #expect(try VP9CodecConfiguration.parse(([1, 0, 0, 0] + vp9.record)[...]) == vp9)
        #expect(throws: FLVError.self) { try VP9CodecConfiguration.parse([0, 31, 0x90][...]) }
    }

    @Test func av1AndVP9PassThroughAndAV1KeyframesGetTheirSequenceHeader() throws {
        var streams = FLVElementaryStreams()
        streams.metadata(["framerate": .number(30)])
        let record = try #require(AV1CodecConfiguration(sequenceHeaderOBU: Self.av1SequenceHeader[...])).record
        #expect(try streams.video(timestamp: 0, body: FLVVideo.enhancedSequenceStart(fourCC: "av01", record: record)).count == 1)
        // No onMetaData size: the sequence header's stands in.
        #expect(streams.video?.codec == .av1 && streams.video?.width == 320 && streams.video?.height == 240 && streams.video?.parameterSets == record)
        let temporalDelimiter: [UInt8] = [0x12, 0x00]
        let frame: [UInt8] = [0x32, 0x03, 7, 8, 9]
        guard case .packet(let keyframe) = try streams.video(timestamp: 40, body: FLVVideo.enhancedFrame(fourCC: "av01", data: temporalDelimiter + frame, keyframe: true)).first else {
            Issue.record("no packet")
            return
        }
        #expect(keyframe.data == Self.av1SequenceHeader + frame && keyframe.isKeyframe && keyframe.dts == 40_000 && keyframe.pts == 40_000)
        guard case .packet(let delta) = try streams.video(timestamp: 73, body: FLVVideo.enhancedFrame(fourCC: "av01", data: frame, keyframe: false)).first else {
            Issue.record("no packet")
            return
        }
        #expect(delta.data == frame && !delta.isKeyframe)
        #expect(throws: FLVError.self) { try streams.video(timestamp: 99, body: FLVVideo.enhancedFrame(fourCC: "av01", data: [0x32, 0x09, 1], keyframe: false)) }

        let vp9 = VP9CodecConfiguration(profile: 0, level: 31, bitDepth: 8)
        #expect(try streams.video(timestamp: 100, body: FLVVideo.enhancedSequenceStart(fourCC: "vp09", record: vp9.record)).count == 1)
        #expect(streams.video?.codec == .vp9 && streams.video?.parameterSets == vp9.record)
        guard case .packet(let picture) = try streams.video(timestamp: 133, body: FLVVideo.enhancedFrame(fourCC: "vp09", data: [0x82, 0x49, 0x83], keyframe: true)).first else {
            Issue.record("no packet")
            return
        }
        #expect(picture.data == [0x82, 0x49, 0x83] && picture.isKeyframe)
    }

    @Test func otherCodecsAreNamed() throws {
        var streams = FLVElementaryStreams()
        let vvc: [UInt8] = [0x90 | 0x00] + Array("vvc1".utf8) + [1, 2, 3]
        #expect(try streams.video(timestamp: 0, body: vvc).isEmpty)
        #expect(streams.unsupportedVideo?.contains("vvc1") == true)
        #expect(try streams.audio(timestamp: 0, body: [0x2F, 1, 2]).isEmpty)
        #expect(streams.unsupportedAudio?.contains("format 2") == true)
    }

    @Test func rtmpTimestampsUnwrap() {
        var clock = UnwrappedClock()
        #expect(clock.microseconds(0xFFFF_FF00) == Int64(0xFFFF_FF00) * 1000)
        #expect(clock.microseconds(0x10) == (Int64(1) << 32 + 0x10) * 1000)
        // A small step back (reordered audio) is not a wrap.
        #expect(clock.microseconds(0x08) == (Int64(1) << 32 + 0x08) * 1000)
    }

    @Test func theTimelineJoinsSourcesEndToEnd() {
        var timeline = IngestTimeline()
        func packet(_ dts: Int64, _ kind: ProgramPacket.Kind = .video) -> ProgramPacket {
            ProgramPacket(kind: kind, data: [], pts: dts + 1000, dts: dts, isKeyframe: false)
        }
        #expect(timeline.map(packet(5_000_000)).dts == 0)
        #expect(timeline.map(packet(5_040_000)).dts == 40_000)
        #expect(timeline.map(packet(5_040_000, .audio)).pts == 41_000)
        timeline.beginSource()
        let joined = timeline.map(packet(0))
        #expect(joined.dts == 40_000 + IngestTimeline.joinGap)
        // A source that leaps an hour ahead is rebased rather than followed.
        let leap = timeline.map(packet(3_600_000_000))
        #expect(leap.dts == joined.dts + IngestTimeline.joinGap)
    }

    @Test func theSlateIsOneGroupRepeatedOnOneClock() throws {
        let slate = try Slate(width: 320, height: 180)
        let first = slate.group(0)
        let pictures = first.filter { $0.kind == .video }
        #expect(pictures.count == 60 && pictures.first?.isKeyframe == true && pictures.filter(\.isKeyframe).count == 1)
        #expect(zip(first, first.dropFirst()).allSatisfy { $0.dts <= $1.dts })
        let audio = first.filter { $0.kind == .audio }
        #expect(audio.first?.dts == 0 && (audio.last?.dts ?? 0) < Slate.groupDuration)
        let second = slate.group(1)
        let secondAudio = second.filter { $0.kind == .audio }
        #expect(second.first { $0.kind == .video }?.dts == Slate.groupDuration)
        // Audio frames keep their spacing across the join.
        let spacing = Int64(1024) * 1_000_000 / 48000
        #expect(abs((secondAudio.first?.dts ?? 0) - (audio.last?.dts ?? 0) - spacing) <= 1)
        #expect(!slate.video.parameterSets.isEmpty && !slate.audio.audioSpecificConfig.isEmpty)
    }
}
