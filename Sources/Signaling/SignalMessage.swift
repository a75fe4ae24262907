import Foundation

/// One signaling message (DESIGN "Interfaces"): a JSON object `{"event": name, "data": {…}}`
/// with an optional `"id"` that the reply echoes. Every message either way has this shape.
public struct SignalMessage: Sendable {
    /// Raised when the protocol changes incompatibly; sent in `welcome`.
    public static let protocolVersion = 1
    /// A message larger than this is refused and the socket closed (the server also caps frames).
    public static let maxBytes = 1 << 20

    public var event: String
    /// The `data` object as JSON values (strings, numbers, bools, arrays, objects, NSNull).
    public var data: [String: any Sendable]
    public var id: String?

    public init(event: String, data: [String: any Sendable] = [:], id: String? = nil) {
        self.event = event
        self.data = data
        self.id = id
    }

    /// Parses one text message; every failure is a `SignalingError` the client is told about.
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
        let data: [String: Any]
        switch object["data"] {
        case nil, is NSNull: data = [:]
        case let value as [String: Any]: data = value
        default: throw SignalingError("invalid_data", "`data` must be an object", id: id)
        }
        return SignalMessage(event: event, data: data.mapValues { Self.sendable($0) }, id: id)
    }

    /// The message as one line of JSON, keys sorted.
    public func encoded() -> String {
        var object: [String: Any] = ["event": event, "data": data]
        if let id { object["id"] = id }
        let bytes = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// An `error` reply (DESIGN: `{"event": "error", "data": {"code", "message", "id"}}`).
    public static func error(_ error: SignalingError) -> SignalMessage {
        var data: [String: any Sendable] = ["code": error.code, "message": error.message]
        if let id = error.id { data["id"] = id }
        return SignalMessage(event: "error", data: data, id: error.id)
    }

    // MARK: Reading fields

    public func string(_ key: String, max: Int = 10_000) throws(SignalingError) -> String {
        guard let value = data[key] as? String else { throw SignalingError("missing_field", "`data.\(key)` must be a string", id: id) }
        guard value.count <= max else { throw SignalingError("invalid_field", "`data.\(key)` is longer than \(max) characters", id: id) }
        return value
    }

    public func optionalString(_ key: String, max: Int = 10_000) throws(SignalingError) -> String? {
        guard data[key] != nil, !(data[key] is NSNull) else { return nil }
        return try string(key, max: max)
    }

    public func bool(_ key: String) throws(SignalingError) -> Bool? {
        guard let value = data[key], !(value is NSNull) else { return nil }
        guard let flag = value as? Bool else { throw SignalingError("invalid_field", "`data.\(key)` must be true or false", id: id) }
        return flag
    }

    private static func sendable(_ value: Any) -> any Sendable {
        switch value {
        case let text as String: text
        case let number as NSNumber: number
        case let list as [Any]: list.map { sendable($0) }
        case let object as [String: Any]: object.mapValues { sendable($0) }
        default: NSNull()
        }
    }
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
}
