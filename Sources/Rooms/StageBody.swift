import Foundation
import Store

/// The stage as the API and the room channel show it.
public struct StageBody: Codable, Sendable {
    public var layout: String
    public var participants: [UUID]
    public var streams: [String]?
    public var banner: Stage.Banner?
    public var logo: String?
    public var background: String?
    public var comment: Stage.Comment?
    public var clips: [UUID]?
    public var clipFullscreen: Bool?
    public var transition: Stage.Transition?
    /// Absent in a request: the stage keeps its theme.
    public var theme: Stage.Theme?
    public var countdown: CountdownBody?

    /// A countdown as shown (`label`, `until` in milliseconds since 1970), or as asked for:
    /// `seconds` from now, or `until` as given back by a read.
    public struct CountdownBody: Codable, Sendable {
        public var label: String?
        public var until: Int64?
        public var seconds: Int?

        init(_ countdown: Stage.Countdown) {
            label = countdown.label
            until = countdown.until
        }

        public var countdown: Stage.Countdown {
            let label = self.label ?? Stage.Countdown.defaultLabel
            if let seconds { return Stage.Countdown(label: label, seconds: seconds) }
            return Stage.Countdown(label: label, until: until ?? 0)
        }
    }

    public init(_ stage: Stage) {
        layout = stage.layout
        participants = stage.participants
        streams = stage.streams
        banner = stage.banner
        logo = stage.logo
        background = stage.background
        comment = stage.comment
        clips = stage.clips
        clipFullscreen = stage.clipFullscreen
        transition = stage.transition
        theme = stage.theme
        countdown = stage.countdown.map { CountdownBody($0) }
    }

    public var stage: Stage {
        Stage(layout: layout, participants: participants, streams: streams ?? [], banner: banner, logo: logo, background: background, comment: comment,
              clips: clips ?? [], clipFullscreen: clipFullscreen ?? false, transition: transition ?? .cut,
              theme: theme ?? .standard, countdown: countdown?.countdown)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: EncodedKeys.self)
        try container.encode(layout, forKey: .layout)
        try container.encode(participants, forKey: .participants)
        try container.encode(streams ?? [], forKey: .streams)
        // Always present: null says "none" rather than "not told".
        try container.encode(banner, forKey: .banner)
        try container.encode(logo, forKey: .logo)
        try container.encode(background, forKey: .background)
        try container.encode(comment, forKey: .comment)
        try container.encode(clips ?? [], forKey: .clips)
        try container.encode(clipFullscreen ?? false, forKey: .clipFullscreen)
        try container.encode(transition ?? .cut, forKey: .transition)
        try container.encode(theme ?? .standard, forKey: .theme)
        try container.encode(countdown, forKey: .countdown)
    }

    /// Decoded by the API's snake-case decoder, which matches camel-case names.
    enum CodingKeys: String, CodingKey { case layout, participants, streams, banner, logo, background, comment, clips, clipFullscreen, transition, theme, countdown }
    /// Spelled out, as room events are encoded without key conversion.
    enum EncodedKeys: String, CodingKey {
        case layout, participants, streams, banner, logo, background, comment, clips, clipFullscreen = "clip_fullscreen", transition, theme, countdown
    }
}
