import FuzzDriver
import RTP

/// Any bytes: parse never traps, and every extension lookup stays inside the packet.
func fuzzRTP(_ bytes: [UInt8]) {
    guard let packet = try? RTPPacket(bytes) else { return }
    for id in UInt8.min...UInt8.max {
        let value = packet.extensionValue(id: id)
        _ = (RTPHeaderExtensionValue.token(value), RTPHeaderExtensionValue.absSendTime(value),
             RTPHeaderExtensionValue.transportSequence(value), RTPHeaderExtensionValue.audioLevel(value))
    }
    for index in 0..<packet.csrcCount { _ = packet.csrc(index) }
    if let vp8 = VP8Descriptor.parse(packet.payload) { precondition(vp8.payloadOffset < packet.payload.count, "VP8 offset past the payload") }
    if let vp9 = VP9Descriptor.parse(packet.payload) { precondition(vp9.payloadOffset <= packet.payload.count, "VP9 offset past the payload") }
    _ = (H264Payload.parse(packet.payload)?.isKeyframe, OpusPayload.parse(packet.payload)?.frameDuration)
    renumberRoundTrip(Array(packet.payload), delta: packet.sequenceNumber)
    precondition(packet.payload.count + packet.headerLength + packet.paddingLength == bytes.count, "RTP ranges do not add up")
    var builder = RTPPacketBuilder(payloadType: packet.payloadType, sequenceNumber: packet.sequenceNumber, timestamp: packet.timestamp, ssrc: packet.ssrc)
    builder.marker = packet.marker
    builder.payload = Array(packet.payload)
    guard let rebuilt = try? RTPPacket(builder.serialize()) else { fatalError("rebuilt RTP does not parse") }
    precondition(rebuilt.sequenceNumber == packet.sequenceNumber && Array(rebuilt.payload) == Array(packet.payload), "RTP round trip changed the packet")
}

/// The SFU renumbers VP8/VP9 pictures in place: whatever the bytes, renumbering stays inside
/// them, what it wrote parses back, and the opposite deltas restore the original.
func renumberRoundTrip(_ payload: [UInt8], delta: UInt16) {
    let tl0Delta = UInt8(truncatingIfNeeded: delta)
    for vp9 in [false, true] {
        var bytes = payload
        let renumber = vp9 ? VP9Descriptor.renumber : VP8Descriptor.renumber
        let written = bytes.withUnsafeMutableBytes { renumber($0, delta, tl0Delta) }
        if let pictureID = written.pictureID {
            let parsed = vp9 ? VP9Descriptor.parse(bytes[...])?.pictureID : VP8Descriptor.parse(bytes[...])?.pictureID
            precondition(parsed == nil || parsed == pictureID, "renumbered picture ID does not parse back")
        }
        _ = bytes.withUnsafeMutableBytes { renumber($0, (0 &- delta) & 0x7FFF, 0 &- tl0Delta) }
        precondition(bytes == payload, "renumbering there and back changed the payload")
    }
}

runFuzzer(fuzzRTP)
