import MediaCore
import Testing

@Suite("MediaCore: wrap-around arithmetic and byte access")
struct MediaCoreTests {
    @Test("newer means less than half the space ahead, across the wrap", arguments: [
        (UInt16(1), UInt16(0), true), (0, 1, false), (0, 65535, true), (65535, 0, false), (5, 5, false), (0x8000, 0, false), (0x7FFF, 0, true),
    ])
    func newer16(a: UInt16, b: UInt16, newer: Bool) {
        #expect(SerialNumber.isNewer(a, than: b) == newer)
    }

    @Test("32-bit timestamps wrap the same way")
    func newer32() {
        #expect(SerialNumber.isNewer(UInt32(10), than: UInt32.max - 10))
        #expect(!SerialNumber.isNewer(UInt32.max - 10, than: UInt32(10)))
    }

    @Test("unwrapping counts through several wraps and tolerates reordering")
    func unwrap() {
        var unwrapper = SequenceUnwrapper()
        var expected: Int64 = 65530
        #expect(unwrapper.unwrap(65530) == 65530)
        for step in 1...140_000 {
            expected += 1
            #expect(unwrapper.unwrap(UInt16(truncatingIfNeeded: 65530 + step)) == expected)
        }
        #expect(unwrapper.unwrap(UInt16(truncatingIfNeeded: 65530 + 140_000 - 3)) == expected - 3)
        #expect(unwrapper.unwrap(UInt16(truncatingIfNeeded: 65530 + 140_001)) == expected + 1)
    }

    @Test("the reader returns nil past the end instead of trapping")
    func reader() {
        var reader = ByteReader([1, 2, 3, 4, 5][...])
        #expect(reader.uint32() == 0x0102_0304)
        #expect(reader.uint16() == nil)
        #expect(reader.uint8() == 5)
        #expect(reader.uint8() == nil)
        #expect(reader.bytes(-1) == nil)
        var out: [UInt8] = []
        out.appendUInt16(0xABCD)
        out.appendUInt32(0x0102_0304)
        #expect(out == [0xAB, 0xCD, 1, 2, 3, 4])
        #expect(out.readUInt16(at: 0) == 0xABCD && out.readUInt32(at: 2) == 0x0102_0304)
    }
}
