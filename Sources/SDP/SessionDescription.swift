/// An SDP session description (RFC 8866) as WebRTC uses it: one session section, then one
/// media section per transceiver (unified plan, RFC 8829 §5).
public struct SessionDescription: Sendable, Equatable {
    public var origin: Origin
    public var sessionName: String
    /// Session-level `a=` lines: group:BUNDLE, ice-lite, msid-semantic, and any others.
    public var attributes: [SDPAttribute]
    public var media: [MediaDescription]

    public init(origin: Origin, sessionName: String = "-", attributes: [SDPAttribute] = [], media: [MediaDescription] = []) {
        self.origin = origin
        self.sessionName = sessionName
        self.attributes = attributes
        self.media = media
    }

    /// `o=` (RFC 8866 §5.2)
    public struct Origin: Sendable, Equatable {
        public var username: String
        public var sessionID: String
        public var sessionVersion: UInt64
        public var address: String

        public init(username: String = "-", sessionID: String, sessionVersion: UInt64, address: String = "127.0.0.1") {
            self.username = username
            self.sessionID = sessionID
            self.sessionVersion = sessionVersion
            self.address = address
        }
    }
}

/// The kinds of `m=` section Tally negotiates media for.
public enum MediaKind: String, Sendable, Hashable, Codable {
    case audio, video
}

/// One `m=` section with its lines (RFC 8866 §5.14).
public struct MediaDescription: Sendable, Equatable {
    /// audio, video or application, as the line names it.
    public var kind: String
    /// 0 rejects the section (RFC 8843 §7.3.3 keeps bundled sections at 9).
    public var port: Int
    public var proto: String
    /// Payload types as text (or `webrtc-datachannel`), in preference order.
    public var formats: [String]
    public var connection: String?
    public var bandwidths: [String]
    public var attributes: [SDPAttribute]

    public init(kind: String, port: Int = 9, proto: String = "UDP/TLS/RTP/SAVPF", formats: [String],
                connection: String? = "IN IP4 0.0.0.0", bandwidths: [String] = [], attributes: [SDPAttribute] = []) {
        self.kind = kind
        self.port = port
        self.proto = proto
        self.formats = formats
        self.connection = connection
        self.bandwidths = bandwidths
        self.attributes = attributes
    }

    /// The section's kind when it is one Tally negotiates (not `application`, say).
    public var mediaKind: MediaKind? { MediaKind(rawValue: kind) }
}

/// `a=name` or `a=name:value` (RFC 8866 §5.13).
public struct SDPAttribute: Sendable, Equatable {
    public var name: String
    public var value: String?

    public init(_ name: String, _ value: String? = nil) {
        self.name = name
        self.value = value
    }
}

public enum SDPError: Error, Equatable, CustomStringConvertible {
    case malformedLine(number: Int, reason: String)
    case missing(String)
    case tooLarge(Int)

    public var description: String {
        switch self {
        case .malformedLine(let number, let reason): "SDP line \(number): \(reason)"
        case .missing(let what): "SDP has no \(what)"
        case .tooLarge(let size): "SDP of \(size) bytes is larger than Tally accepts"
        }
    }
}
