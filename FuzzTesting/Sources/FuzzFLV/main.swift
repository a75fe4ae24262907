import FLV
import FuzzDriver

/// Any bytes as an FLV audio or video tag body, an AVC or HEVC configuration record, an
/// H.264 or HEVC SPS or byte stream: parsing never traps and never reads past its input.
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
    let units = AnnexB.nalUnits(bytes)
    precondition(units.reduce(0) { $0 + $1.count } <= bytes.count, "NAL units larger than the stream")
    _ = try? FLVVideo.avcSequenceHeader(parameterSets: bytes)
    _ = FLVVideo.avcFrame(annexB: bytes, keyframe: true)
    _ = try? FLVVideo.hevcSequenceHeader(parameterSets: bytes)
    _ = FLVVideo.hevcFrame(annexB: bytes, keyframe: true)
}

runFuzzer(fuzzFLV)
