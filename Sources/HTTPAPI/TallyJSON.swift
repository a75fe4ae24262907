import Foundation
import Hummingbird
import NIOCore

/// The API's JSON: snake_case keys, ISO 8601 dates.
enum TallyJSON {
    static let maxBodyBytes = 64 * 1024

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// The wire name of a coding path, e.g. `settings.layout`, for error messages.
    static func fieldName(_ path: [any CodingKey]) -> String {
        let name = path.map { key in key.intValue.map { "[\($0)]" } ?? snakeCase(key.stringValue) }.joined(separator: ".")
        return name.isEmpty ? "body" : name.replacingOccurrences(of: ".[", with: "[")
    }

    static func snakeCase(_ camel: String) -> String {
        var out = ""
        for character in camel {
            if character.isUppercase {
                if !out.isEmpty && !out.hasSuffix("_") { out.append("_") }
                out.append(contentsOf: character.lowercased())
            } else {
                out.append(character)
            }
        }
        return out
    }
}

extension TallyJSON {
    /// `T` from JSON bytes; a 400 naming the field when they do not fit.
    static func decode<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer) throws -> T {
        do {
            return try decoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch DecodingError.keyNotFound(let key, let detail) {
            throw APIError(.badRequest, "invalid_json", "missing field `\(fieldName(detail.codingPath + [key]))`")
        } catch DecodingError.valueNotFound(_, let detail) {
            throw APIError(.badRequest, "invalid_json", "field `\(fieldName(detail.codingPath))` must not be null")
        } catch DecodingError.typeMismatch(let expected, let detail) {
            throw APIError(.badRequest, "invalid_json", "field `\(fieldName(detail.codingPath))` must be \(describe(expected))")
        } catch DecodingError.dataCorrupted(let detail) {
            if detail.codingPath.isEmpty {
                throw APIError(.badRequest, "invalid_json", "the body is not valid JSON")
            }
            throw APIError(.badRequest, "invalid_json", "field `\(fieldName(detail.codingPath))` is invalid: \(detail.debugDescription)")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Int64.Type, is Double.Type: "a number"
        case is [Any].Type: "an array"
        default: "an object"
        }
    }
}

extension Request {
    /// The body as `T`: 400 naming the field when it does not fit, 413 when too large.
    func decodeJSON<T: Decodable>(_ type: T.Type, context: AppContext) async throws -> T {
        let buffer = try await body.collect(upTo: TallyJSON.maxBodyBytes)
        guard buffer.readableBytes > 0 else { throw APIError(.badRequest, "invalid_json", "the request needs a JSON body") }
        return try TallyJSON.decode(T.self, from: buffer)
    }

    /// Like `decodeJSON`, for endpoints whose body may be left out entirely.
    func decodeOptionalJSON<T: Decodable>(_ type: T.Type, context: AppContext) async throws -> T? {
        let buffer = try await body.collect(upTo: TallyJSON.maxBodyBytes)
        return buffer.readableBytes == 0 ? nil : try TallyJSON.decode(T.self, from: buffer)
    }
}

/// Small validation helpers that raise 400s naming the field.
enum Validate {
    static func text(_ value: String, field: String, max: Int, allowEmpty: Bool = false) throws -> String {
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        if !allowEmpty && trimmed.isEmpty { throw APIError(.badRequest, "invalid_field", "`\(field)` must not be empty") }
        if trimmed.count > max { throw APIError(.badRequest, "invalid_field", "`\(field)` must be at most \(max) characters") }
        if trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && $0 != "\n" }) {
            throw APIError(.badRequest, "invalid_field", "`\(field)` must not contain control characters")
        }
        return trimmed
    }

    static func uuid(_ text: String?, what: String) throws -> UUID {
        guard let text, let id = UUID(uuidString: text) else { throw APIError.notFound(what) }
        return id
    }
}
