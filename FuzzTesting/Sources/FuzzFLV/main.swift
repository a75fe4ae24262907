import FLV
import FuzzDriver

/// Any bytes as an FLV audio or video tag body, an AVC configuration record or an H.264
/// byte stream: parsing never traps and never reads past its input.
func fuzzFLV(_ bytes: [UInt8]) {
    if let video = try? FLVVideoTag.parse(bytes[...]) {
        precondition(video.payload.count <= bytes.count, "video payload larger than the tag")
        _ = try? FLVVideoTag.annexB(lengthPrefixed: video.payload)
        _ = try? AVCDecoderConfiguration.parse(video.payload)
    }
    if let audio = try? FLVAudioTag.parse(bytes[...]) { precondition(audio.payload.count < max(1, bytes.count), "audio payload larger than the tag") }
    _ = try? AVCDecoderConfiguration.parse(bytes[...])
    _ = try? AACConfig(audioSpecificConfig: bytes)
    if let size = H264PictureSize(sps: [0x67] + bytes[...]) { precondition(size.width > 0 && size.height > 0, "a picture with no area") }
    let units = AnnexB.nalUnits(bytes)
    precondition(units.reduce(0) { $0 + $1.count } <= bytes.count, "NAL units larger than the stream")
    _ = try? FLVVideo.avcSequenceHeader(parameterSets: bytes)
    _ = FLVVideo.avcFrame(annexB: bytes, keyframe: true)
}

runFuzzer(fuzzFLV)
