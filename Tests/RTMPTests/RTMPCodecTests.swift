@testable import FLV
import MediaCodecs
@testable import RTMP
import Testing

@Suite struct AMF0Tests {
    @Test func roundTripsEveryType() throws {
        let values: [AMF0Value] = [
            .string("connect"), .number(1), .object([("app", .string("live")), ("nested", .object([("flag", .boolean(true))]))]),
            .null, .undefined, .ecmaArray([("width", .number(1280))]), .strictArray([.number(1), .string("x")]), .date(1_700_000_000_000),
            .string(String(repeating: "k", count: 70_000)),
        ]
        #expect(try AMF0.decode(AMF0.encode(values)[...]) == values)
    }

    @Test func refusesTruncatedAndHostileInput() {
        #expect(throws: AMF0Error.truncated) { try AMF0.decode([0x02, 0x00, 0x05, 0x61][...]) }
        #expect(throws: AMF0Error.unknownMarker(0x11)) { try AMF0.decode([0x11][...]) }
        #expect(throws: AMF0Error.truncated) { try AMF0.decode([0x0A, 0xFF, 0xFF, 0xFF, 0xFF][...]) }
        let deep: [UInt8] = Array(repeating: [UInt8]([0x0A, 0, 0, 0, 1]), count: 100).flatMap { $0 }
        #expect(throws: AMF0Error.self) { try AMF0.decode(deep[...]) }
    }
}

@Suite struct ChunkStreamTests {
    @Test func readsWhatTheWriterWritesAcrossChunkSizesAndExtendedTimestamps() throws {
        var writer = RTMPChunkWriter()
        var bytes: [UInt8] = []
        let big = RTMPMessage(typeID: 9, streamID: 1, timestamp: 0x0100_0000, payload: (0..<10_000).map { UInt8($0 & 0xFF) })
        let small = RTMPMessage(typeID: 8, streamID: 1, timestamp: 20, payload: [1, 2, 3])
        writer.write(.setChunkSize(1000), into: &bytes)
        writer.setChunkSize(1000)
        writer.write(big, into: &bytes)
        writer.write(small, into: &bytes)
        var reader = RTMPChunkReader()
        var messages: [RTMPMessage] = []
        // Dribble the bytes in uneven pieces, as TCP does.
        var offset = 0
        for size in [1, 7, 100, 3000, 50, 9999, 100_000] where offset < bytes.count {
            let end = min(bytes.count, offset + size)
            messages += try reader.read(bytes[offset..<end])
            offset = end
        }
        #expect(messages.map(\.typeID) == [1, 9, 8])
        #expect(messages[1] == big)
        #expect(messages[2] == small)
        #expect(reader.chunkSize == 1000)
    }

    /// One-byte chunks cost a header and a parse per payload byte: 2 MB of them took ten
    /// seconds of CPU before any stream key was checked.
    @Test func refusesChunkSizesBelowTheDefault() throws {
        for size: UInt32 in [1, 2, 127] {
            var writer = RTMPChunkWriter()
            var bytes: [UInt8] = []
            writer.write(.setChunkSize(size), into: &bytes)
            var reader = RTMPChunkReader()
            #expect(throws: RTMPError.self) { try reader.read(bytes) }
        }
        var writer = RTMPChunkWriter()
        var bytes: [UInt8] = []
        writer.write(.setChunkSize(128), into: &bytes)
        var reader = RTMPChunkReader()
        _ = try reader.read(bytes)
        #expect(reader.chunkSize == 128)
    }

    @Test func decodesCompressedHeaders() throws {
        // Type 0 on csid 4, then type 1 (new length, delta 33), type 2 (delta 33), type 3 (same again).
        var bytes: [UInt8] = [0x04, 0, 0, 10, 0, 0, 2, 9, 1, 0, 0, 0, 0xAA, 0xBB]
        bytes += [0x44, 0, 0, 33, 0, 0, 1, 9, 0xCC]
        bytes += [0x84, 0, 0, 33, 0xDD]
        bytes += [0xC4, 0xEE]
        var reader = RTMPChunkReader()
        let messages = try reader.read(bytes)
        #expect(messages.map(\.timestamp) == [10, 43, 76, 109])
        #expect(messages.map(\.payload) == [[0xAA, 0xBB], [0xCC], [0xDD], [0xEE]])
        #expect(messages.allSatisfy { $0.streamID == 1 })
    }

    @Test func boundsHostileInput() {
        var reader = RTMPChunkReader(maxMessageSize: 1000)
        #expect(throws: RTMPError.messageTooLarge(0xFFFFFF)) { try reader.read([0x03, 0, 0, 0, 0xFF, 0xFF, 0xFF, 20, 0, 0, 0, 0]) }
        var fresh = RTMPChunkReader()
        #expect(throws: RTMPError.self) { try fresh.read([0xC3, 0x00]) }
        var zero = RTMPChunkReader()
        #expect(throws: RTMPError.self) { try zero.read([0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0]) }
    }

    @Test func parsesEndpoints() throws {
        let plain = try RTMPEndpoint(url: "rtmp://a.rtmp.youtube.com/live2", streamKey: "abcd-efgh")
        #expect(plain.host == "a.rtmp.youtube.com" && plain.port == 1935 && plain.app == "live2" && !plain.secure)
        let secure = try RTMPEndpoint(url: "rtmps://live-api-s.facebook.com:443/rtmp/", streamKey: "FB-1")
        #expect(secure.secure && secure.port == 443 && secure.app == "rtmp" && secure.tcURL == "rtmps://live-api-s.facebook.com:443/rtmp")
        let inline = try RTMPEndpoint(url: "rtmp://127.0.0.1:1936/live/key123", streamKey: "")
        #expect(inline.app == "live" && inline.streamKey == "key123" && inline.port == 1936)
        #expect(throws: RTMPError.self) { try RTMPEndpoint(url: "http://x/live", streamKey: "k") }
        #expect(throws: RTMPError.self) { try RTMPEndpoint(url: "rtmp://host", streamKey: "k") }
        #expect(throws: RTMPError.self) { try RTMPEndpoint(url: "rtmp://host:99999/live", streamKey: "k") }
    }
}

@Suite struct FLVTests {
    let parameterSets: [UInt8] = [0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1F, 0xAC, 0, 0, 0, 1, 0x68, 0xEE, 0x3C, 0x80]

    @Test func buildsAndReadsTheAVCConfigurationRecord() throws {
        let header = try FLVVideo.avcSequenceHeader(parameterSets: parameterSets)
        let tag = try FLVVideoTag.parse(header[...])
        #expect(tag.codec == .avc && tag.kind == .sequenceHeader && tag.isKeyframe)
        let record = try AVCDecoderConfiguration.parse(tag.payload)
        #expect(record.lengthSize == 4)
        #expect(record.parameterSets == parameterSets)
    }

    @Test(arguments: [(320, 240), (640, 360), (854, 480), (1920, 1080), (202, 360)])
    func spsGivesThePictureSize(width: Int, height: Int) throws {
        let encoder = try H264Encoder(.init(width: width, height: height, bitrateKbps: 300, threads: 1))
        let sps = try #require(AnnexB.nalUnits(encoder.parameterSets).first { AnnexB.type($0) == 7 })
        #expect(PictureSize(h264SPS: sps) == PictureSize(width: width, height: height))
    }

    @Test func malformedSPSGiveNoSize() {
        #expect(PictureSize(h264SPS: [0x67, 0x64, 0x00][...]) == nil)
        #expect(PictureSize(h264SPS: [0x68, 0x64, 0x00, 0x1F, 0xAC][...]) == nil)
        #expect(PictureSize(h264SPS: [0x67] + [UInt8](repeating: 0, count: 40)) == nil)
        #expect(PictureSize.unescaped([0, 0, 3, 1, 0, 0, 3][...]) == [0, 0, 1, 0, 0])
    }

    @Test func refusesParameterSetsTheRecordCannotCount() {
        let sps: [UInt8] = [0, 0, 1, 0x67, 0x42, 0, 0x1F]
        let manyPPS = sps + (0..<256).flatMap { [0, 0, 1, 0x68, UInt8($0)] }
        #expect(throws: FLVError.unsupported("1 SPS and 256 PPS in one record")) { try FLVVideo.avcSequenceHeader(parameterSets: manyPPS) }
        let hugePPS = sps + [0, 0, 1, 0x68] + [UInt8](repeating: 0x11, count: 70_000)
        #expect(throws: FLVError.self) { try FLVVideo.avcSequenceHeader(parameterSets: hugePPS) }
    }

    @Test func framesRoundTripToAnnexB() throws {
        let annexB: [UInt8] = [0, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x65, 1, 2, 3, 0, 0, 0, 1, 0x65, 4]
        let body = FLVVideo.avcFrame(annexB: annexB, keyframe: true, compositionTime: -33)
        let tag = try FLVVideoTag.parse(body[...])
        #expect(tag.compositionTime == -33 && tag.kind == .frame)
        #expect(try FLVVideoTag.annexB(lengthPrefixed: tag.payload) == [0, 0, 0, 1, 0x65, 1, 2, 3, 0, 0, 0, 1, 0x65, 4])
        #expect(throws: FLVError.self) { try FLVVideoTag.annexB(lengthPrefixed: [0, 0, 0, 9, 1][...]) }
    }

    /// What x265 writes for 640×360 (coded as 640×368, with a conformance window).
    static let hevcParameterSets: [UInt8] = [0, 0, 0, 1] + hex("40010c01ffff01600000030090000003000003003f959809")
        + [0, 0, 0, 1] + hex("42010101600000030090000003000003003fa00502016965959a4932bc05a020000003002000000303c1")
        + [0, 0, 0, 1] + hex("4401c172b46240")

    static func hex(_ text: String) -> [UInt8] {
        stride(from: 0, to: text.count, by: 2).map { UInt8(text.dropFirst($0).prefix(2), radix: 16)! }
    }

    @Test func buildsAndReadsTheHEVCConfigurationRecord() throws {
        let header = try FLVVideo.hevcSequenceHeader(parameterSets: Self.hevcParameterSets)
        let tag = try FLVVideoTag.parse(header[...])
        #expect(tag.codec == .fourCC("hvc1") && tag.kind == .sequenceHeader && tag.isKeyframe)
        let record = try HEVCDecoderConfiguration.parse(tag.payload)
        #expect(record.lengthSize == 4 && record.parameterSets == Self.hevcParameterSets)
        // The profile bytes are the SPS's without its emulation prevention.
        #expect(Array(tag.payload.dropFirst().prefix(12)) == [0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x3F])
        #expect(throws: FLVError.self) { try HEVCDecoderConfiguration.parse(tag.payload.prefix(30)) }
        #expect(throws: FLVError.self) { try FLVVideo.hevcSequenceHeader(parameterSets: Array(Self.hevcParameterSets.prefix(28))) }

        let picture: [UInt8] = [0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 0, 1, 0x26, 0x01, 0xAF, 0x11]
        let frame = try FLVVideoTag.parse(FLVVideo.hevcFrame(annexB: picture, keyframe: true, compositionTime: 66)[...])
        #expect(frame.kind == .frame && frame.isKeyframe && frame.compositionTime == 66)
        #expect(try FLVVideoTag.annexB(lengthPrefixed: frame.payload) == [0, 0, 0, 1, 0x26, 0x01, 0xAF, 0x11], "the delimiter is left out")
    }

    @Test func hevcSPSGivesSizeAndCodecString() throws {
        let units = AnnexB.nalUnits(Self.hevcParameterSets)
        let sps = try #require(units.first { HEVC.type($0) == HEVC.sps })
        #expect(HEVC.type(units[0]) == HEVC.vps && HEVC.type(units[2]) == HEVC.pps)
        #expect(PictureSize(hevcSPS: sps) == PictureSize(width: 640, height: 360))
        #expect(PictureSize(hevcSPS: sps.prefix(20)) == nil && PictureSize(hevcSPS: units[0]) == nil)
        #expect(CodecString.hevc(sps: sps) == "hvc1.1.6.L63.90")
        #expect(CodecString.avc(sps: parameterSets[4..<9]) == "avc1.64001f")
    }

    @Test func readsEnhancedRTMPHeaders() throws {
        let hevc: [UInt8] = [0x90 | 0x01] + Array("hvc1".utf8) + [0, 0, 0, 0xAB]
        let tag = try FLVVideoTag.parse(hevc[...])
        #expect(tag.codec == .fourCC("hvc1") && tag.isKeyframe && tag.kind == .frame && Array(tag.payload) == [0xAB])
        #expect(throws: FLVError.self) { try FLVVideoTag.parse([0x90, 0x61][...]) }
        let audio = try FLVAudioTag.parse(FLVAudio.aacSequenceHeader(audioSpecificConfig: [0x11, 0x90])[...])
        #expect(audio.format == 10 && audio.isSequenceHeader && Array(audio.payload) == [0x11, 0x90])
    }
}
