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
    precondition(packet.payload.count + packet.headerLength + packet.paddingLength == bytes.count, "RTP ranges do not add up")
    var builder = RTPPacketBuilder(payloadType: packet.payloadType, sequenceNumber: packet.sequenceNumber, timestamp: packet.timestamp, ssrc: packet.ssrc)
    builder.marker = packet.marker
    builder.payload = Array(packet.payload)
    guard let rebuilt = try? RTPPacket(builder.serialize()) else { fatalError("rebuilt RTP does not parse") }
    precondition(rebuilt.sequenceNumber == packet.sequenceNumber && Array(rebuilt.payload) == Array(packet.payload), "RTP round trip changed the packet")
}

runFuzzer(fuzzRTP)
