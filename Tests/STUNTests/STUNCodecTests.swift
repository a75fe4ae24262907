import Testing
@testable import STUN

@Suite("STUN codec: message types, attributes and malformed input")
struct STUNCodecTests {
    @Test("method and class pack into the type field as RFC 8489 figure 3 draws", arguments: [
        (STUNMessageType.bindingRequest, 0x0001),
        (.bindingIndication, 0x0011),
        (.bindingSuccess, 0x0101),
        (.bindingError, 0x0111),
        (STUNMessageType(method: 0x003, messageClass: .request), 0x0003), // TURN Allocate
    ] as [(STUNMessageType, UInt16)])
    func messageTypes(type: STUNMessageType, wire: UInt16) {
        #expect(type.wireValue == wire)
        #expect(STUNMessageType(wire: wire) == type)
    }

    @Test("error codes carry class, number and reason")
    func errorCodes() throws {
        let id = STUNTransactionID.random()
        let message = STUNMessage(type: .bindingError, transactionID: id, attributes: [
            .errorCode(420, reason: "Unknown Attribute"), .unknownAttributes([STUNAttributeType(rawValue: 0x0042)]),
        ])
        let parsed = try STUNCodec.parse(STUNCodec.encode(message)).message
        #expect(parsed.errorCode?.code == 420)
        #expect(parsed.errorCode?.reason == "Unknown Attribute")
        #expect(parsed.attribute(.unknownAttributes)?.value == [0x00, 0x42])
    }

    @Test("unknown comprehension-required attributes are reported; optional ones are not")
    func unknownAttributes() throws {
        let message = STUNMessage(type: .bindingRequest, transactionID: .random(), attributes: [
            STUNAttribute(type: STUNAttributeType(rawValue: 0x0042), value: [1]),
            STUNAttribute(type: STUNAttributeType(rawValue: 0x8042), value: [2]),
            .useCandidate, .priority(1),
        ])
        let parsed = try STUNCodec.parse(STUNCodec.encode(message)).message
        #expect(parsed.unknownComprehensionRequired == [STUNAttributeType(rawValue: 0x0042)])
        #expect(parsed.useCandidate)
    }

    static let valid = STUNCodec.encode(STUNMessage(type: .bindingRequest, transactionID: .random(), attributes: [.username("a:b")]), integrityKey: [1, 2, 3])

    @Test("malformed input is a clear error, never a crash", arguments: [
        ([UInt8](), STUNError.tooShort(0)),
        (Array(valid.prefix(19)), .tooShort(19)),
        ([0x80] + Array(valid.dropFirst()), .notSTUN),
        (Array(valid.prefix(4)) + [0, 0, 0, 0] + Array(valid.dropFirst(8)), .notSTUN),
        (Array(valid.dropLast(4)), .lengthMismatch(declared: valid.count - 20, actual: valid.count - 24)),
        (Array(valid.dropLast()) + [valid.last! ^ 1], .badFingerprint),
        ([0x00, 0x01, 0x00, 0x04, 0x21, 0x12, 0xa4, 0x42] + [UInt8](repeating: 0, count: 12) + [0x00, 0x06, 0x00, 0x09], .truncatedAttribute(.username)),
        ([0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42] + [UInt8](repeating: 0, count: 12) + [0x00, 0x06, 0x00, 0x08, 1, 2, 3, 4], .truncatedAttribute(.username)),
        ([0x00, 0x01, 0x00, 0x03, 0x21, 0x12, 0xa4, 0x42] + [UInt8](repeating: 0, count: 12) + [0, 0, 0], .unalignedLength(3)),
    ])
    func malformed(bytes: [UInt8], error: STUNError) {
        #expect(throws: error) { try STUNCodec.parse(bytes) }
    }

    @Test("an attribute after FINGERPRINT is refused")
    func afterFingerprint() {
        var bytes = STUNCodec.encode(STUNMessage(type: .bindingRequest, transactionID: .random()))
        bytes += [0x80, 0x22, 0x00, 0x00]
        bytes.replaceSubrange(2..<4, with: UInt16(bytes.count - 20).bigEndianBytes)
        #expect(throws: STUNError.self) { try STUNCodec.parse(bytes) }
    }

    @Test("a message without MESSAGE-INTEGRITY cannot be verified")
    func missingIntegrity() throws {
        let received = try STUNCodec.parse(STUNCodec.encode(STUNMessage(type: .bindingRequest, transactionID: .random())))
        #expect(throws: STUNError.missingIntegrity) { try received.verifyIntegrity(key: [1]) }
    }

    @Test("RFC 7983 demultiplexing: STUN starts with 0-3", arguments: [(UInt8(0), true), (3, true), (20, false), (128, false)])
    func demultiplex(first: UInt8, isSTUN: Bool) {
        #expect(STUNCodec.looksLikeSTUN([first] + [UInt8](repeating: 0, count: 19)) == isSTUN)
    }
}
