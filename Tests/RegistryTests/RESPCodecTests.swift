import Testing
@testable import Registry

@Suite("RESP codec over hiredis")
struct RESPCodecTests {
    @Test("commands are written as binary-safe multi-bulk arrays")
    func encode() {
        let bytes = RESPEncoder.encode(["SET", "key", "a b\r\n"])
        #expect(String(decoding: bytes, as: UTF8.self) == "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\na b\r\n\r\n")
    }

    @Test("replies are decoded whatever way the bytes are split")
    func decodeSplit() throws {
        let wire = Array("+OK\r\n:42\r\n$-1\r\n$5\r\nhello\r\n*2\r\n$1\r\na\r\n:7\r\n-ERR wrong type\r\n".utf8)
        let expected: [RESPValue] = [.status("OK"), .integer(42), .bulk(nil), .bulk("hello"), .array([.bulk("a"), .integer(7)]), .error("ERR wrong type")]
        for chunkSize in [1, 2, 3, 7, wire.count] {
            let decoder = RESPDecoder()
            var replies: [RESPValue] = []
            var offset = 0
            while offset < wire.count {
                let chunk = Array(wire[offset..<min(offset + chunkSize, wire.count)])
                try chunk.withUnsafeBytes { try decoder.feed($0) }
                while let reply = try decoder.next() { replies.append(reply) }
                offset += chunkSize
            }
            #expect(replies == expected, "chunk size \(chunkSize)")
        }
    }

    @Test("garbage is a protocol error, not a crash")
    func garbage() throws {
        let decoder = RESPDecoder()
        try Array("?what\r\n".utf8).withUnsafeBytes { try decoder.feed($0) }
        #expect(throws: RegistryError.self) { try decoder.next() }
    }
}
