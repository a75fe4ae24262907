import FuzzDriver
import RTCP

/// Any bytes: parse never traps, and what parses serializes into a compound that parses.
func fuzzRTCP(_ bytes: [UInt8]) {
    guard let packets = try? RTCPCompound.parse(bytes) else { return }
    for case .nack(let nack) in packets { _ = nack.lostSequenceNumbers }
    let serialized = RTCPCompound.serialize(packets)
    guard let again = try? RTCPCompound.parse(serialized) else { fatalError("re-serialized RTCP does not parse") }
    precondition(again.count == packets.count, "RTCP round trip changed the packet count")
}

runFuzzer(fuzzRTCP)
