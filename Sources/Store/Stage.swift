import Foundation

/// What the program shows: who is on stage, in order (the first is featured), in which
/// layout, under which banner. Stored with the broadcast, so it survives a restart.
public struct Stage: Codable, Sendable, Equatable {
    public var layout: String
    public var participants: [UUID]
    /// Ingest streams (their `stream_id`) on stage after the participants: an encoder's feed
    /// shown like a person.
    public var streams: [String]
    public var banner: Banner?
    /// Images from the host's uploads (`/uploads/…` URLs): a logo in the corner, a background
    /// behind the stage.
    public var logo: String?
    public var background: String?
    /// A chat message the host put on screen: a lower third with who said it.
    public var comment: Comment?
    /// Videos from the host's library on stage after the people and streams.
    public var clips: [UUID]
    /// The first clip fills the whole program, alone with its sound, until this is false again.
    public var clipFullscreen: Bool
    /// How the program changes layout or who is on stage: a cut, or a cross-fade.
    public var transition: Transition
    /// The show's look: accent colour, font, and how name tags and the banner are drawn.
    public var theme: Theme
    /// A clock counting down to a moment ("Starting soon 4:59"), centred on the program.
    public var countdown: Countdown?

    public enum Transition: String, Codable, Sendable {
        case cut, fade
    }

    public struct Comment: Codable, Sendable, Equatable {
        public var name: String
        public var text: String

        public init(name: String, text: String) {
            self.name = name
            self.text = text
        }
    }

    /// The brand of a show, applied alike by the studio's preview and the compositor. Every
    /// field is a name from a short list, so a stored theme is checked like the rest of a stage.
    public struct Theme: Codable, Sendable, Equatable {
        public static let fonts = ["sans", "serif", "mono"]
        /// `accent`: the accent colour behind white (or, on a light accent, dark) text;
        /// `shade`: dark and translucent, with an accent edge; `light`: white with dark text.
        public static let styles = ["accent", "shade", "light"]
        public static let standard = Theme()

        /// `#rrggbb`.
        public var accent: String
        public var font: String
        public var nametags: String
        public var banner: String

        public init(accent: String = "#2563eb", font: String = "sans", nametags: String = "shade", banner: String = "accent") {
            self.accent = accent
            self.font = font
            self.nametags = nametags
            self.banner = banner
        }

        /// What is wrong with this theme, or nil when every field is one the server knows.
        public var problem: String? {
            if rgb == nil { return "`accent` is a colour written #rrggbb" }
            if !Self.fonts.contains(font) { return "`font` is one of \(Self.fonts.joined(separator: ", "))" }
            if !Self.styles.contains(nametags) { return "`nametags` is one of \(Self.styles.joined(separator: ", "))" }
            if !Self.styles.contains(banner) { return "`banner` is one of \(Self.styles.joined(separator: ", "))" }
            return nil
        }

        /// The accent's red, green and blue, when it is written #rrggbb.
        public var rgb: (red: Int, green: Int, blue: Int)? {
            let hex = accent.utf8
            guard hex.count == 7, hex.first == UInt8(ascii: "#"), let value = Int(accent.dropFirst(), radix: 16),
                  accent.dropFirst().allSatisfy(\.isHexDigit) else { return nil }
            return (value >> 16 & 0xff, value >> 8 & 0xff, value & 0xff)
        }

        /// Fields a stored or sent theme leaves out take the standard's.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let standard = Theme()
            accent = try container.decodeIfPresent(String.self, forKey: .accent)?.lowercased() ?? standard.accent
            font = try container.decodeIfPresent(String.self, forKey: .font) ?? standard.font
            nametags = try container.decodeIfPresent(String.self, forKey: .nametags) ?? standard.nametags
            banner = try container.decodeIfPresent(String.self, forKey: .banner) ?? standard.banner
        }
    }

    /// A countdown to `until` (milliseconds since 1970) under a label; it shows 0:00 once
    /// the moment has passed, until the host takes it off.
    public struct Countdown: Codable, Sendable, Equatable {
        /// What a countdown says when it is started without a label.
        public static let defaultLabel = "Starting soon"

        public var label: String
        public var until: Int64

        public init(label: String, until: Int64) {
            self.label = label
            self.until = until
        }

        /// `seconds` from `now`. A number of seconds that is not 1 to a day (any number may be
        /// sent) gives a countdown ending in 1970, which the stage rules refuse.
        public init(label: String, seconds: Int, from now: Date = Date()) {
            guard (1...86_400).contains(seconds) else {
                self.init(label: label, until: 0)
                return
            }
            self.init(label: label, until: Int64((now.timeIntervalSince1970 * 1000).rounded()) + Int64(seconds) * 1000)
        }
    }

    public struct Banner: Codable, Sendable, Equatable {
        public var text: String

        public init(text: String) {
            self.text = text
        }
    }

    public init(layout: String, participants: [UUID] = [], streams: [String] = [], banner: Banner? = nil, logo: String? = nil,
                background: String? = nil, comment: Comment? = nil, clips: [UUID] = [], clipFullscreen: Bool = false,
                transition: Transition = .cut, theme: Theme = .standard, countdown: Countdown? = nil) {
        self.theme = theme
        self.countdown = countdown
        self.comment = comment
        self.transition = transition
        self.clips = clips
        self.clipFullscreen = clipFullscreen
        self.layout = layout
        self.participants = participants
        self.streams = streams
        self.banner = banner
        self.logo = logo
        self.background = background
    }

    enum CodingKeys: String, CodingKey { case layout, participants, streams, banner, logo, background, comment, clips, clipFullscreen = "clip_fullscreen", transition, theme, countdown }

    /// Stages stored before streams, clips or themes have none.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        layout = try container.decode(String.self, forKey: .layout)
        participants = try container.decode([UUID].self, forKey: .participants)
        streams = try container.decodeIfPresent([String].self, forKey: .streams) ?? []
        banner = try container.decodeIfPresent(Banner.self, forKey: .banner)
        logo = try container.decodeIfPresent(String.self, forKey: .logo)
        background = try container.decodeIfPresent(String.self, forKey: .background)
        comment = try container.decodeIfPresent(Comment.self, forKey: .comment)
        clips = try container.decodeIfPresent([UUID].self, forKey: .clips) ?? []
        clipFullscreen = try container.decodeIfPresent(Bool.self, forKey: .clipFullscreen) ?? false
        transition = try container.decodeIfPresent(Transition.self, forKey: .transition) ?? .cut
        theme = try container.decodeIfPresent(Theme.self, forKey: .theme) ?? .standard
        countdown = try container.decodeIfPresent(Countdown.self, forKey: .countdown)
    }
}
