/// A Redis reply (RESP2, which is what hiredis 0.14 reads).
public enum RESPValue: Sendable, Equatable {
    case status(String)
    case error(String)
    case integer(Int)
    /// `nil` is Redis's null bulk string.
    case bulk(String?)
    /// `nil` is Redis's null array.
    case array([RESPValue]?)

    var isError: Bool {
        if case .error = self { return true }
        return false
    }

    var string: String? {
        switch self {
        case .status(let text), .bulk(let text?): text
        case .integer(let number): String(number)
        default: nil
        }
    }

    var integer: Int? {
        switch self {
        case .integer(let number): number
        case .bulk(let text?), .status(let text): Int(text)
        default: nil
        }
    }
}
