import Foundation

/// What a studio asks of the server: one case per event, its `data` read into typed fields
/// with their bounds checked (docs/signaling.md).
public enum StudioRequest: Sendable, Equatable {
    case ping
    case join(Join)
    case leave
    case status(StatusChange)
    case chat(Chat)
    case setStage(StageChange)
    case mute(Mute)
    case goLive
    case endBroadcast
    case offer(Offer)
    case startScreenShare
    case stopScreenShare
    /// Tally is ICE-lite: it learns the client's addresses from the checks themselves.
    case iceCandidate

    /// The request `message` makes; an unknown event or a bad field is a `SignalingError`.
    public init(_ message: SignalMessage) throws(SignalingError) {
        switch message.event {
        case "ping": self = .ping
        case "join-broadcast": self = .join(try message.decode(Join.self))
        case "leave-broadcast": self = .leave
        case "participant-status": self = .status(try message.decode(StatusChange.self))
        case "chat-message": self = .chat(try message.decode(Chat.self))
        case "stage-set": self = .setStage(try message.decode(StageChange.self))
        case "mute-request": self = .mute(try message.decode(Mute.self))
        case "go-live": self = .goLive
        case "end-broadcast": self = .endBroadcast
        case "webrtc-offer": self = .offer(try message.decode(Offer.self))
        case "screen-share-start": self = .startScreenShare
        case "screen-share-stop": self = .stopScreenShare
        case "ice-candidate": self = .iceCandidate
        default: throw SignalingError("unknown_event", "no such event: \(message.event)", id: message.id)
        }
    }

    /// `join-broadcast`: the broadcast, a guest's chosen name, and the place a reconnecting
    /// client held.
    public struct Join: Decodable, Sendable, Equatable {
        public var broadcastID: UUID
        public var name: String?
        public var resume: Resume?

        /// A place to take back. Malformed fields are kept as nil and refused as a whole by
        /// the room, so a bad claim never silently becomes a fresh join.
        public struct Resume: Decodable, Sendable, Equatable {
            public var participantID: String?
            public var token: String?

            enum CodingKeys: String, CodingKey {
                case participantID = "participant_id", token
            }

            public init(participantID: String?, token: String?) {
                self.participantID = participantID
                self.token = token
            }

            public init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                participantID = try? container.decodeIfPresent(String.self, forKey: .participantID)
                token = try? container.decodeIfPresent(String.self, forKey: .token)
            }
        }

        enum CodingKeys: String, CodingKey {
            case broadcastID = "broadcast_id", name, resume
        }

        public init(broadcastID: UUID, name: String? = nil, resume: Resume? = nil) {
            self.broadcastID = broadcastID
            self.name = name
            self.resume = resume
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            guard let id = UUID(uuidString: try container.text(.broadcastID, max: 64)) else {
                throw DecodingError.dataCorruptedError(forKey: .broadcastID, in: container, debugDescription: "must be a UUID")
            }
            broadcastID = id
            name = try container.optionalText(.name, max: 100)
            // Anything but an object is no claim at all: the client joins afresh.
            resume = try? container.decodeIfPresent(Resume.self, forKey: .resume)
        }
    }

    /// `participant-status`: what the participant turned on or off; absent means unchanged.
    public struct StatusChange: Decodable, Sendable, Equatable {
        public var audioEnabled: Bool?
        public var videoEnabled: Bool?

        enum CodingKeys: String, CodingKey {
            case audioEnabled = "audio_enabled", videoEnabled = "video_enabled"
        }

        public init(audioEnabled: Bool? = nil, videoEnabled: Bool? = nil) {
            self.audioEnabled = audioEnabled
            self.videoEnabled = videoEnabled
        }
    }

    /// `chat-message`: one line of at most 1000 characters, trimmed, never empty.
    public struct Chat: Decodable, Sendable, Equatable {
        public var text: String

        public init(text: String) {
            self.text = text
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            text = try container.text(.text, max: 1000).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else {
                throw DecodingError.dataCorruptedError(forKey: .text, in: container, debugDescription: "needs some text")
            }
        }

        enum CodingKeys: String, CodingKey { case text }
    }

    /// A field the host may set, clear (null) or leave as it is (absent).
    public enum Change<Value: Sendable & Equatable>: Sendable, Equatable {
        case keep
        case clear
        case set(Value)

        /// The value after the change, given what it was.
        public func applied(to current: Value?) -> Value? {
            switch self {
            case .keep: current
            case .clear: nil
            case .set(let value): value
            }
        }
    }

    /// `stage-set`: any of the layout, who is on stage in order, the streams on stage, the
    /// banner, logo and background; what is absent stays as it is.
    public struct StageChange: Decodable, Sendable, Equatable {
        /// The most ids a list may hold; the stage rules then allow far fewer.
        public static let maxListed = 64

        public var layout: String?
        public var participants: [UUID]?
        public var streams: [String]?
        /// Clips from the host's library, after the people and streams.
        public var clips: [UUID]?
        /// The first clip alone on the whole program.
        public var clipFullscreen: Bool?
        /// `cut` or `fade`: how the program changes arrangement from now on.
        public var transition: String?
        public var banner: Change<String> = .keep
        public var logo: Change<String> = .keep
        public var background: Change<String> = .keep
        /// A chat message on screen, `{name, text}`; null takes it off.
        public var comment: Change<Comment> = .keep
        /// Any of the theme's fields, the rest kept; null goes back to the standard theme.
        public var theme: Change<ThemeFields> = .keep
        /// `{label, seconds}` starts a countdown; null takes it off.
        public var countdown: Change<Countdown> = .keep

        /// Names checked against the server's lists by the stage rules.
        public struct ThemeFields: Decodable, Sendable, Equatable {
            public var accent: String?
            public var font: String?
            public var nametags: String?
            public var banner: String?

            public init(accent: String? = nil, font: String? = nil, nametags: String? = nil, banner: String? = nil) {
                self.accent = accent
                self.font = font
                self.nametags = nametags
                self.banner = banner
            }

            enum CodingKeys: String, CodingKey { case accent, font, nametags, banner }

            public init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                accent = try container.optionalText(.accent, max: 16)
                font = try container.optionalText(.font, max: 16)
                nametags = try container.optionalText(.nametags, max: 16)
                banner = try container.optionalText(.banner, max: 16)
            }
        }

        public struct Countdown: Decodable, Sendable, Equatable {
            public var label: String?
            public var seconds: Int

            public init(label: String? = nil, seconds: Int) {
                self.label = label
                self.seconds = seconds
            }
        }

        public struct Comment: Decodable, Sendable, Equatable {
            public var name: String
            public var text: String

            public init(name: String, text: String) {
                self.name = name
                self.text = text
            }
        }

        enum CodingKeys: String, CodingKey {
            case layout, participants, streams, clips, clipFullscreen = "clip_fullscreen", transition, banner, logo, background, comment, theme, countdown
        }

        public init(layout: String? = nil, participants: [UUID]? = nil, streams: [String]? = nil) {
            self.layout = layout
            self.participants = participants
            self.streams = streams
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            layout = try container.optionalText(.layout, max: 40)
            if container.contains(.participants) { participants = try Self.ids(container, .participants, what: "participant ids") }
            if container.contains(.clips) { clips = try Self.ids(container, .clips, what: "clip ids") }
            transition = try container.optionalText(.transition, max: 10)
            guard transition == nil || ["cut", "fade"].contains(transition) else {
                throw DecodingError.dataCorruptedError(forKey: .transition, in: container, debugDescription: "is cut or fade")
            }
            if container.contains(.clipFullscreen) {
                guard let fullscreen = try? container.decode(Bool.self, forKey: .clipFullscreen) else {
                    throw DecodingError.dataCorruptedError(forKey: .clipFullscreen, in: container, debugDescription: "is true or false")
                }
                clipFullscreen = fullscreen
            }
            if container.contains(.streams) {
                streams = try Self.list(container, .streams, what: "ingest stream ids")
                guard streams?.allSatisfy({ !$0.isEmpty && $0.count <= 64 }) == true else {
                    throw DecodingError.dataCorruptedError(forKey: .streams, in: container, debugDescription: "holds ingest stream ids")
                }
            }
            if container.contains(.banner) {
                if try container.decodeNil(forKey: .banner) {
                    banner = .clear
                } else {
                    struct Banner: Decodable { var text: String }
                    guard let given = try? container.decode(Banner.self, forKey: .banner) else {
                        throw DecodingError.dataCorruptedError(forKey: .banner, in: container, debugDescription: "is {\"text\": the banner's text} or null")
                    }
                    banner = .set(given.text)
                }
            }
            logo = try Self.change(container, .logo)
            background = try Self.change(container, .background)
            comment = try Self.nullable(container, .comment, shape: "{\"name\": who wrote it, \"text\": the message}") { (given: Comment) in
                given.name.count <= 200 && given.text.count <= 1000
            }
            theme = try Self.nullable(container, .theme, shape: "{\"accent\", \"font\", \"nametags\", \"banner\"} (any of them)") { (_: ThemeFields) in true }
            countdown = try Self.nullable(container, .countdown, shape: "{\"label\": what it counts down to, \"seconds\": how long}") { (given: Countdown) in
                (given.label?.count ?? 0) <= 200
            }
        }

        /// A value that is kept when absent, cleared by null, and set when it reads as
        /// `Value` and passes `check`.
        private static func nullable<Value: Decodable>(_ container: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys, shape: String,
                                                       check: (Value) -> Bool) throws -> Change<Value> {
            guard container.contains(key) else { return .keep }
            if try container.decodeNil(forKey: key) { return .clear }
            guard let given = try? container.decode(Value.self, forKey: key), check(given) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "is \(shape) or null")
            }
            return .set(given)
        }

        private static func ids(_ container: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys, what: String) throws -> [UUID] {
            try list(container, key, what: what).map { text in
                guard let id = UUID(uuidString: text) else {
                    throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "holds \(what)")
                }
                return id
            }
        }

        private static func list(_ container: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys, what: String) throws -> [String] {
            guard let list = try? container.decode([String].self, forKey: key), list.count <= maxListed else {
                throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "is a list of at most \(maxListed) \(what)")
            }
            return list
        }

        private static func change(_ container: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> Change<String> {
            guard container.contains(key) else { return .keep }
            return try container.optionalText(key, max: 300).map { .set($0) } ?? .clear
        }
    }

    /// `mute-request`: the host asks a participant to mute their audio (the default) or video.
    public struct Mute: Decodable, Sendable, Equatable {
        public enum Kind: String, Sendable, Equatable, Decodable {
            case audio, video
        }

        public var participantID: String
        public var kind: Kind

        enum CodingKeys: String, CodingKey {
            case participantID = "participant_id", kind
        }

        public init(participantID: String, kind: Kind = .audio) {
            self.participantID = participantID
            self.kind = kind
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            participantID = try container.text(.participantID, max: 64)
            let given = try container.optionalText(.kind, max: 10)
            guard let kind = Kind(rawValue: given ?? "audio") else {
                throw DecodingError.dataCorruptedError(forKey: .kind, in: container, debugDescription: "is audio or video")
            }
            self.kind = kind
        }
    }

    /// `webrtc-offer`: without `target`, publish this participant's media (or, with
    /// `source: "screen"`, its screen share); with `target`, play that participant's.
    public struct Offer: Decodable, Sendable, Equatable {
        /// The offer as sent; the SDP parser holds it to its own size limit.
        public var sdp: String
        public var target: String?
        public var screen: Bool

        enum CodingKeys: String, CodingKey { case sdp, target, source }

        public init(sdp: String, target: String? = nil, screen: Bool = false) {
            self.sdp = sdp
            self.target = target
            self.screen = screen
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            sdp = try container.decode(String.self, forKey: .sdp)
            target = try container.optionalText(.target, max: 64)
            screen = try container.optionalText(.source, max: 10) == "screen"
        }
    }
}
