import CHiredis
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// hiredis's RESP writer and incremental reader; the only file that touches the C library.
struct RESPEncoder {
    /// The command in RESP's multi-bulk form, binary-safe.
    static func encode(_ arguments: [String]) -> [UInt8] {
        var cStrings = arguments.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        let lengths = arguments.map { $0.utf8.count }
        var target: UnsafeMutablePointer<CChar>?
        let length = cStrings.withUnsafeMutableBufferPointer { argv in
            argv.withMemoryRebound(to: UnsafePointer<CChar>?.self) { constArgv in
                redisFormatCommandArgv(&target, Int32(arguments.count), constArgv.baseAddress, lengths)
            }
        }
        guard length > 0, let target else { return [] }
        defer { redisFreeCommand(target) }
        return target.withMemoryRebound(to: UInt8.self, capacity: Int(length)) { Array(UnsafeBufferPointer(start: $0, count: Int(length))) }
    }
}

/// Turns bytes from a Redis socket into replies, however the bytes are split.
final class RESPDecoder {
    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        reader = redisReaderCreate()
    }

    deinit {
        redisReaderFree(reader)
    }

    func feed(_ bytes: UnsafeRawBufferPointer) throws {
        guard !bytes.isEmpty else { return }
        let status = redisReaderFeed(reader, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count)
        guard status == REDIS_OK else { throw RegistryError.protocolError(errorText()) }
    }

    /// The next complete reply, or nil until more bytes arrive.
    func next() throws -> RESPValue? {
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else { throw RegistryError.protocolError(errorText()) }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    private func errorText() -> String {
        withUnsafeBytes(of: reader.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let value = reply.pointee
        func text() -> String {
            guard let str = value.str else { return "" }
            return String(decoding: UnsafeRawBufferPointer(start: str, count: Int(value.len)), as: UTF8.self)
        }
        switch value.type {
        case REDIS_REPLY_STATUS: return .status(text())
        case REDIS_REPLY_ERROR: return .error(text())
        case REDIS_REPLY_INTEGER: return .integer(Int(value.integer))
        case REDIS_REPLY_NIL: return .bulk(nil)
        case REDIS_REPLY_ARRAY:
            guard let elements = value.element else { return .array([]) }
            return .array((0..<Int(value.elements)).map { convert(elements[$0]!) })
        default: return .bulk(text())
        }
    }
}
