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

    public struct Banner: Codable, Sendable, Equatable {
        public var text: String

        public init(text: String) {
            self.text = text
        }
    }

    public init(layout: String, participants: [UUID] = [], streams: [String] = [], banner: Banner? = nil, logo: String? = nil,
                background: String? = nil, comment: Comment? = nil, clips: [UUID] = [], clipFullscreen: Bool = false,
                transition: Transition = .cut) {
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

    enum CodingKeys: String, CodingKey { case layout, participants, streams, banner, logo, background, comment, clips, clipFullscreen = "clip_fullscreen", transition }

    /// Stages stored before streams or clips could stand on them have neither.
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
    }
}
