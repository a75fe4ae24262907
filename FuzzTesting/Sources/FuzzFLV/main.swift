import FLV
import FuzzDriver

/// Any bytes as an FLV audio or video tag body, an AVC, HEVC, AV1 or VP9 configuration
/// record, an H.264 or HEVC SPS or byte stream, AV1 OBUs or a sequence header, a PNG, JPEG
/// or WebP header: parsing
/// never traps and never reads past its input.
func fuzzFLV(_ bytes: [UInt8]) {
    if let video = try? FLVVideoTag.parse(bytes[...]) {
        precondition(video.payload.count <= bytes.count, "video payload larger than the tag")
        _ = try? FLVVideoTag.annexB(lengthPrefixed: video.payload)
        _ = try? AVCDecoderConfiguration.parse(video.payload)
        _ = try? HEVCDecoderConfiguration.parse(video.payload)
    }
    if let audio = try? FLVAudioTag.parse(bytes[...]) { precondition(audio.payload.count < max(1, bytes.count), "audio payload larger than the tag") }
    _ = try? AVCDecoderConfiguration.parse(bytes[...])
    _ = try? AACConfig(audioSpecificConfig: bytes)
    if let size = PictureSize(h264SPS: [0x67] + bytes[...]) { precondition(size.width > 0 && size.height > 0, "a picture with no area") }
    let hevcSPS = ([0x42, 0x01] + bytes)[...]
    if let size = PictureSize(hevcSPS: hevcSPS) { precondition(size.width > 0 && size.height > 0, "an HEVC picture with no area") }
    _ = (CodecString.hevc(sps: hevcSPS), CodecString.avc(sps: [0x67] + bytes[...]))
    if let record = try? HEVCDecoderConfiguration.parse(bytes[...]) {
        // Each unit costs at least three bytes of the record (length and one byte) and takes five out.
        precondition(record.parameterSets.count * 3 <= bytes.count * 5, "HEVC parameter sets larger than the record allows")
        _ = try? FLVVideo.hevcSequenceHeader(parameterSets: record.parameterSets)
    }
    if let obus = AV1.obus(bytes[...]) {
        precondition(obus.reduce(0) { $0 + $1.bytes.count } == bytes.count, "OBUs that do not tile their temporal unit")
        for obu in obus { _ = AV1SequenceHeader(obu: obu.bytes) }
    }
    if let header = AV1SequenceHeader(obu: ([0x0A, UInt8(min(bytes.count, 127))] + bytes.prefix(127))[...]) {
        precondition(header.width > 0 && header.height > 0 && [8, 10, 12].contains(header.bitDepth), "an AV1 sequence header that describes no picture")
        if let record = AV1CodecConfiguration(sequenceHeaderOBU: ([0x0A, UInt8(min(bytes.count, 127))] + bytes.prefix(127))[...]) {
            precondition(try! AV1CodecConfiguration.parse(record.record[...]) == record, "an AV1 record that does not read back")
            _ = CodecString.av1(record)
        }
    }
    if let record = try? AV1CodecConfiguration.parse(bytes[...]) { _ = (record.sequenceHeader, CodecString.av1(record)) }
    if let record = try? VP9CodecConfiguration.parse(bytes[...]) { _ = CodecString.vp9(record) }
    for head in [[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], [0xFF, 0xD8], Array("RIFF".utf8) + [0, 0, 0, 0] + Array("WEBP".utf8), []] as [[UInt8]] {
        if let size = PictureSize(stillImage: head + bytes) { precondition(size.width > 0 && size.height > 0, "an image with no area") }
    }
    let units = AnnexB.nalUnits(bytes)
    precondition(units.reduce(0) { $0 + $1.count } <= bytes.count, "NAL units larger than the stream")
    _ = try? FLVVideo.avcSequenceHeader(parameterSets: bytes)
    _ = FLVVideo.avcFrame(annexB: bytes, keyframe: true)
    _ = try? FLVVideo.hevcSequenceHeader(parameterSets: bytes)
    _ = FLVVideo.hevcFrame(annexB: bytes, keyframe: true)
}

runFuzzer(fuzzFLV)
