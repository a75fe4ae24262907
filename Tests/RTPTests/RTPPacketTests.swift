import Testing
@testable import RTP

@Suite("RTP packets (RFC 3550) with header extensions (RFC 8285)")
struct RTPPacketTests {
    /// Chrome's first VP8 packet shape: mid and transport-cc in the one-byte form.
    static let chromeVP8: [UInt8] = [
        0x90, 0xe0, 0x1a, 0x2b, // V=2 X=1 CC=0, M=1 PT=96, seq=6699
        0x00, 0x01, 0xe2, 0x40, // timestamp=123456
        0xca, 0xfe, 0xba, 0xbe, // SSRC
        0xbe, 0xde, 0x00, 0x02, // one-byte extensions, 2 words
        0x10, 0x30,             // id=1 len=1: mid "0"
        0x31, 0x12, 0x34,       // id=3 len=2: transport-cc seq 0x1234
        0x00, 0x00, 0x00,       // padding to the word
        0x90, 0x01, 0x02,       // payload (VP8 descriptor + data)
    ]

    @Test("fields, extensions and payload are read in place")
    func parse() throws {
        let packet = try RTPPacket(Self.chromeVP8)
        #expect(packet.marker && packet.payloadType == 96)
        #expect(packet.sequenceNumber == 6699 && packet.timestamp == 123_456 && packet.ssrc == 0xcafe_babe)
        #expect(packet.extensionProfile == 0xBEDE)
        #expect(RTPHeaderExtensionValue.token(packet.extensionValue(id: 1)) == "0")
        #expect(RTPHeaderExtensionValue.transportSequence(packet.extensionValue(id: 3)) == 0x1234)
        #expect(packet.extensionValue(id: 2) == nil)
        #expect(Array(packet.payload) == [0x90, 0x01, 0x02])
        #expect(packet.headerLength == 24)
    }

    @Test("the builder round-trips one-byte and two-byte extensions, CSRCs and padding")
    func roundTrip() throws {
        var builder = RTPPacketBuilder(payloadType: 111, sequenceNumber: 65535, timestamp: 0xFFFF_FFFF, ssrc: 42)
        builder.marker = true
        builder.csrcs = [7, 8]
        builder.extensions = [(1, Array("m1".utf8)), (2, RTPHeaderExtensionValue.encodeAbsSendTime(0x123456)), (4, [0xAA])]
        builder.payload = [1, 2, 3, 4, 5]
        builder.paddingLength = 3
        let packet = try RTPPacket(builder.serialize())
        #expect(packet.extensionProfile == 0xBEDE)
        #expect(packet.csrcCount == 2 && packet.csrc(1) == 8)
        #expect(RTPHeaderExtensionValue.token(packet.extensionValue(id: 1)) == "m1")
        #expect(RTPHeaderExtensionValue.absSendTime(packet.extensionValue(id: 2)) == 0x123456)
        #expect(RTPHeaderExtensionValue.audioLevel(packet.extensionValue(id: 4))! == (true, 0x2A))
        #expect(Array(packet.payload) == [1, 2, 3, 4, 5] && packet.paddingLength == 3)

        builder.extensions = [(20, Array(repeating: 9, count: 20))]
        let twoByte = try RTPPacket(builder.serialize())
        #expect(twoByte.extensionProfile == 0x1000)
        #expect(twoByte.extensionValue(id: 20)?.count == 20)
    }

    @Test("malformed packets are clear errors", arguments: [
        ([UInt8](repeating: 0x80, count: 11), RTPError.tooShort(11)),
        ([0x40] + [UInt8](repeating: 0, count: 11), .badVersion(1)),
        ([0x82] + [UInt8](repeating: 0, count: 11), .truncated("CSRC list")),
        ([0x90] + [UInt8](repeating: 0, count: 11) + [0xbe, 0xde, 0x00, 0x05], .truncated("header extension")),
        ([0xa0] + [UInt8](repeating: 0, count: 10) + [0], .badPadding(0)),
        ([0xa0] + [UInt8](repeating: 0, count: 11) + [1, 2, 200], .badPadding(200)),
    ])
    func malformed(bytes: [UInt8], error: RTPError) {
        #expect(throws: error) { try RTPPacket(bytes) }
    }

    @Test("a truncated extension element reads as absent, not as garbage")
    func truncatedElement() throws {
        let bytes: [UInt8] = [0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0x00, 0x01, 0x1f, 1, 2, 3]
        let packet = try RTPPacket(bytes)
        #expect(packet.extensionValue(id: 1) == nil)
    }
}

@Suite("RTP packet cache")
struct RTPPacketCacheTests {
    @Test("holds the last packets by sequence number and forgets older ones")
    func ring() {
        var cache = RTPPacketCache(capacity: 4)
        for sequence in UInt16(65534)...UInt16(65535) { cache.store([UInt8(sequence & 0xFF)], sequenceNumber: sequence) }
        for sequence in UInt16(0)...UInt16(3) { cache.store([UInt8(sequence)], sequenceNumber: sequence) }
        #expect(cache.packet(3) == [3] && cache.packet(0) == [0])
        #expect(cache.packet(65535) == nil && cache.packet(7) == nil)
    }
}

@Suite("RTP forwarding helpers")
struct RTPForwardingTests {
    @Test("RTX carries the original sequence number before the payload, without padding")
    func retransmission() throws {
        var builder = RTPPacketBuilder(payloadType: 96, sequenceNumber: 1000, timestamp: 5, ssrc: 1)
        builder.extensions = [(1, Array("0".utf8))]
        builder.payload = [9, 8, 7]
        builder.paddingLength = 4
        builder.marker = true
        let original = try RTPPacket(builder.serialize())
        let rtx = try RTPPacket(original.retransmission(payloadType: 97, ssrc: 2, sequenceNumber: 7))
        #expect(rtx.payloadType == 97 && rtx.ssrc == 2 && rtx.sequenceNumber == 7 && rtx.marker)
        #expect(Array(rtx.payload) == [0x03, 0xE8, 9, 8, 7] && rtx.paddingLength == 0)
        #expect(RTPHeaderExtensionValue.token(rtx.extensionValue(id: 1)) == "0")
        let moved = try RTPPacket(original.withSSRC(0xAABB_CCDD))
        #expect(moved.ssrc == 0xAABB_CCDD && Array(moved.payload) == [9, 8, 7] && moved.sequenceNumber == 1000)
    }

    @Test("an extension value is overwritten in place only when present with the same length")
    func overwrite() throws {
        var builder = RTPPacketBuilder(payloadType: 96, sequenceNumber: 1, timestamp: 5, ssrc: 1)
        builder.extensions = [(1, Array("0".utf8)), (3, RTPHeaderExtensionValue.encodeTransportSequence(41))]
        builder.payload = [9, 8, 7]
        var bytes = builder.serialize()
        #expect(RTPPacket.overwriteExtension(id: 3, with: RTPHeaderExtensionValue.encodeTransportSequence(0xBEEF), in: &bytes))
        let packet = try RTPPacket(bytes)
        #expect(RTPHeaderExtensionValue.transportSequence(packet.extensionValue(id: 3)) == 0xBEEF)
        #expect(Array(packet.payload) == [9, 8, 7] && RTPHeaderExtensionValue.token(packet.extensionValue(id: 1)) == "0")
        #expect(!RTPPacket.overwriteExtension(id: 3, with: [1, 2, 3], in: &bytes))
        #expect(!RTPPacket.overwriteExtension(id: 5, with: [1, 2], in: &bytes))
    }
}
