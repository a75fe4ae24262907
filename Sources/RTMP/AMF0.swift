/// Action Message Format 0 (Adobe AMF0 spec): the values RTMP commands are made of.
public indirect enum AMF0Value: Sendable, Equatable {
    case number(Double)
    case boolean(Bool)
    case string(String)
    case object([(String, AMF0Value)])
    case null
    case undefined
    case ecmaArray([(String, AMF0Value)])
    case strictArray([AMF0Value])
    case date(Double)

    public static func == (lhs: AMF0Value, rhs: AMF0Value) -> Bool {
        switch (lhs, rhs) {
        case let (.number(a), .number(b)), let (.date(a), .date(b)): a == b
        case let (.boolean(a), .boolean(b)): a == b
        case let (.string(a), .string(b)): a == b
        case (.null, .null), (.undefined, .undefined): true
        case let (.object(a), .object(b)), let (.ecmaArray(a), .ecmaArray(b)):
            a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case let (.strictArray(a), .strictArray(b)): a == b
        default: false
        }
    }

    /// A property of an object or ECMA array.
    public subscript(key: String) -> AMF0Value? {
        switch self {
        case .object(let pairs), .ecmaArray(let pairs): pairs.first { $0.0 == key }?.1
        default: nil
        }
    }

    public var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var number: Double? {
        if case .number(let value) = self { return value }
        return nil
    }
}

public enum AMF0Error: Error, Equatable, CustomStringConvertible {
    case truncated
    case unknownMarker(UInt8)
    case tooDeep

    public var description: String {
        switch self {
        case .truncated: "AMF0: value runs past the end of the message"
        case .unknownMarker(let marker): "AMF0: unsupported type marker \(marker)"
        case .tooDeep: "AMF0: objects nested too deeply"
        }
    }
}

public enum AMF0 {
    public static func encode(_ values: [AMF0Value]) -> [UInt8] {
        var out: [UInt8] = []
        for value in values { encode(value, into: &out) }
        return out
    }

    static func encode(_ value: AMF0Value, into out: inout [UInt8]) {
        switch value {
        case .number(let number):
            out.append(0x00)
            appendDouble(number, to: &out)
        case .boolean(let flag):
            out += [0x01, flag ? 1 : 0]
        case .string(let text):
            let bytes = Array(text.utf8)
            if bytes.count > 0xFFFF {
                out.append(0x0C)
                appendUInt32(UInt32(bytes.count), to: &out)
            } else {
                out += [0x02, UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF)]
            }
            out += bytes
        case .object(let pairs):
            out.append(0x03)
            appendProperties(pairs, to: &out)
        case .null:
            out.append(0x05)
        case .undefined:
            out.append(0x06)
        case .ecmaArray(let pairs):
            out.append(0x08)
            appendUInt32(UInt32(pairs.count), to: &out)
            appendProperties(pairs, to: &out)
        case .strictArray(let values):
            out.append(0x0A)
            appendUInt32(UInt32(values.count), to: &out)
            for value in values { encode(value, into: &out) }
        case .date(let millis):
            out.append(0x0B)
            appendDouble(millis, to: &out)
            out += [0, 0]
        }
    }

    private static func appendProperties(_ pairs: [(String, AMF0Value)], to out: inout [UInt8]) {
        for (key, value) in pairs {
            let bytes = Array(key.utf8.prefix(0xFFFF))
            out += [UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF)] + bytes
            encode(value, into: &out)
        }
        out += [0, 0, 0x09]
    }

    private static func appendDouble(_ value: Double, to out: inout [UInt8]) {
        let bits = value.bitPattern
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
    }

    private static func appendUInt32(_ value: UInt32, to out: inout [UInt8]) {
        out += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    /// Every value in `bytes`, in order.
    public static func decode(_ bytes: ArraySlice<UInt8>) throws(AMF0Error) -> [AMF0Value] {
        var reader = Reader(bytes: bytes)
        var values: [AMF0Value] = []
        while !reader.atEnd { values.append(try reader.value(depth: 0)) }
        return values
    }

    struct Reader {
        let bytes: ArraySlice<UInt8>
        var index: Int
        static let maxDepth = 32

        init(bytes: ArraySlice<UInt8>) {
            self.bytes = bytes
            index = bytes.startIndex
        }

        var atEnd: Bool { index >= bytes.endIndex }

        mutating func take(_ count: Int) throws(AMF0Error) -> ArraySlice<UInt8> {
            guard count >= 0, count <= bytes.endIndex - index else { throw .truncated }
            defer { index += count }
            return bytes[index..<index + count]
        }

        mutating func uint(_ size: Int) throws(AMF0Error) -> UInt64 {
            var value: UInt64 = 0
            for byte in try take(size) { value = value << 8 | UInt64(byte) }
            return value
        }

        mutating func string(lengthSize: Int) throws(AMF0Error) -> String {
            let length = Int(try uint(lengthSize))
            return String(decoding: try take(length), as: UTF8.self)
        }

        mutating func properties(depth: Int) throws(AMF0Error) -> [(String, AMF0Value)] {
            var pairs: [(String, AMF0Value)] = []
            while true {
                let key = try string(lengthSize: 2)
                if key.isEmpty, index < bytes.endIndex, bytes[index] == 0x09 {
                    index += 1
                    return pairs
                }
                pairs.append((key, try value(depth: depth + 1)))
            }
        }

        mutating func value(depth: Int) throws(AMF0Error) -> AMF0Value {
            guard depth < Self.maxDepth else { throw .tooDeep }
            let marker = try take(1).first!
            switch marker {
            case 0x00: return .number(Double(bitPattern: try uint(8)))
            case 0x01: return .boolean(try take(1).first! != 0)
            case 0x02: return .string(try string(lengthSize: 2))
            case 0x03: return .object(try properties(depth: depth))
            case 0x05: return .null
            case 0x06: return .undefined
            case 0x08:
                _ = try uint(4)
                return .ecmaArray(try properties(depth: depth))
            case 0x0A:
                let count = Int(try uint(4))
                // Each element takes at least one byte: a count beyond what is left is a lie.
                guard count <= bytes.endIndex - index else { throw .truncated }
                var values: [AMF0Value] = []
                for _ in 0..<count { values.append(try value(depth: depth + 1)) }
                return .strictArray(values)
            case 0x0B:
                let millis = Double(bitPattern: try uint(8))
                _ = try take(2)
                return .date(millis)
            case 0x0C: return .string(try string(lengthSize: 4))
            default: throw .unknownMarker(marker)
            }
        }
    }
}
