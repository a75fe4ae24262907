import Foundation

/// One signaling message (DESIGN "Interfaces"): a JSON object `{"event": name, "data": {…}}`
/// with an optional `"id"` that the reply echoes. Every message either way has this shape.
/// `data` is kept as JSON and read or written only as a typed `Codable` value.
public struct SignalMessage: Sendable {
    /// Raised when the protocol changes incompatibly; sent in `welcome`.
    public static let protocolVersion = 1
    /// A message larger than this is refused and the socket closed (the server also caps frames).
    public static let maxBytes = 1 << 20

    public var event: String
    /// The `data` object, as JSON.
    public private(set) var data: Data
    public var id: String?

    /// A message with an empty `data` object.
    public init(event: String, id: String? = nil) {
        self.event = event
        data = Data("{}".utf8)
        self.id = id
    }

    /// A message whose `data` is `payload`, which must encode as a JSON object.
    public init(event: String, payload: some Encodable, id: String? = nil) {
        self.event = event
        data = (try? Self.encoder.encode(payload)) ?? Data("{}".utf8)
        self.id = id
    }

    /// Parses one text message's envelope; every failure is a `SignalingError` the client is
    /// told about. Its `data` is read later, as the type its event calls for (`decode`).
    public static func parse(_ text: String) throws(SignalingError) -> SignalMessage {
        guard text.utf8.count <= maxBytes else { throw .tooLarge }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw SignalingError("invalid_json", "a message is one JSON object {\"event\": …, \"data\": {…}}")
        }
        let id: String?
        switch object["id"] {
        case nil, is NSNull: id = nil
        case let text as String where text.count <= 100: id = text
        // On Linux every NSNumber from JSON passes `is Bool`, 0 and 1 included; only
        // true and false come as the boolean subclass.
        case let number as NSNumber where String(describing: type(of: number)) != "__NSCFBoolean": id = number.stringValue
        default: throw SignalingError("invalid_id", "`id` is a string of at most 100 characters or a number")
        }
        guard let event = object["event"] as? String, !event.isEmpty, event.count <= 64 else {
            throw SignalingError("invalid_event", "`event` must name the message", id: id)
        }
        var message = SignalMessage(event: event, id: id)
        switch object["data"] {
        case nil, is NSNull: break
        case let value as [String: Any]:
            guard let data = try? JSONSerialization.data(withJSONObject: value) else {
                throw SignalingError("invalid_data", "`data` must be an object", id: id)
            }
            message.data = data
        default: throw SignalingError("invalid_data", "`data` must be an object", id: id)
        }
        return message
    }

    /// `data` as `type`. A field that is missing, of the wrong type or out of bounds is a
    /// `missing_field` or `invalid_field` error naming it (`data.participants[2]`).
    public func decode<Payload: Decodable>(_ type: Payload.Type) throws(SignalingError) -> Payload {
        do {
            return try JSONDecoder().decode(Payload.self, from: data)
        } catch let error as DecodingError {
            throw SignalingError(error, id: id)
        } catch {
            throw SignalingError("invalid_data", "`data` cannot be read", id: id)
        }
    }

    /// The message as one line of JSON, keys sorted.
    public func encoded() -> String {
        let payload = (try? JSONSerialization.jsonObject(with: data)) ?? [String: Any]()
        var object: [String: Any] = ["event": event, "data": payload]
        if let id { object["id"] = id }
        let bytes = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// An `error` reply (DESIGN: `{"event": "error", "data": {"code", "message", "id"}}`).
    public static func error(_ error: SignalingError) -> SignalMessage {
        struct Body: Encodable {
            var code: String
            var message: String
            var id: String?
        }
        return SignalMessage(event: "error", payload: Body(code: error.code, message: error.message, id: error.id), id: error.id)
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()
}

/// Why a message was refused: reported as an `error` event, the socket stays open.
public struct SignalingError: Error, Equatable, Sendable {
    public var code: String
    public var message: String
    public var id: String?

    public init(_ code: String, _ message: String, id: String? = nil) {
        self.code = code
        self.message = message
        self.id = id
    }

    public static let tooLarge = SignalingError("message_too_large", "a message is at most 1 MiB")

    /// A payload that could not be read, worded for the client with the field's path.
    init(_ error: DecodingError, id: String?) {
        func path(_ keys: [any CodingKey]) -> String {
            keys.reduce("data") { path, key in key.intValue.map { "\(path)[\($0)]" } ?? "\(path).\(key.stringValue)" }
        }
        switch error {
        case .keyNotFound(let key, let context):
            self.init("missing_field", "`\(path(context.codingPath + [key]))` is missing", id: id)
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            self.init("invalid_field", "`\(path(context.codingPath))` must be \(Self.describe(type))", id: id)
        case .dataCorrupted(let context):
            self.init("invalid_field", context.codingPath.isEmpty ? context.debugDescription : "`\(path(context.codingPath))` \(context.debugDescription)", id: id)
        @unknown default:
            self.init("invalid_data", "`data` cannot be read", id: id)
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is any BinaryInteger.Type, is any BinaryFloatingPoint.Type: "a number"
        case is [Any].Type: "a list"
        default: "an object"
        }
    }
}

extension KeyedDecodingContainer {
    /// A string of at most `max` characters.
    public func text(_ key: Key, max: Int) throws -> String {
        let value = try decode(String.self, forKey: key)
        guard value.count <= max else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "is longer than \(max) characters")
        }
        return value
    }

    /// A string of at most `max` characters, or nil when absent or null.
    public func optionalText(_ key: Key, max: Int) throws -> String? {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        return try text(key, max: max)
    }
}
