import FuzzDriver
import STUN

/// Any bytes: parse never traps; what parses re-encodes into something that parses to the
/// same message, and integrity checks with any key only ever answer yes or no.
func fuzzSTUN(_ bytes: [UInt8]) {
    guard let received = try? STUNCodec.parse(bytes) else { return }
    _ = try? received.verifyIntegrity(key: Array("fuzz-password".utf8))
    let message = received.message
    _ = (message.username, message.priority, message.iceControlling, message.iceControlled, message.xorMappedAddress,
         message.errorCode, message.software, message.unknownComprehensionRequired)
    let encoded = STUNCodec.encode(message, integrityKey: [1, 2, 3], fingerprint: true)
    guard let again = try? STUNCodec.parse(encoded) else { fatalError("re-encoded STUN does not parse") }
    precondition(again.message == message, "STUN round trip changed the message")
    precondition((try? again.verifyIntegrity(key: [1, 2, 3])) != nil, "STUN integrity does not verify after encoding")
}

runFuzzer(fuzzSTUN)
