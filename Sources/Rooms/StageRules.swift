import Foundation
import Store

/// Why a proposed stage was refused; `code` goes to the API's error shape.
public struct StageError: Error, Equatable, CustomStringConvertible {
    public var code: String
    public var description: String

    init(_ code: String, _ description: String) {
        self.code = code
        self.description = description
    }
}

/// What may stand on a stage, as StreamYard allows it: at most ten people, each a host or
/// guest of this broadcast, once; a layout the server has; a short banner.
public enum StageRules {
    public static let maxOnStage = 10
    /// Hosts and guests in the studio at once, on stage or backstage.
    public static let maxInStudio = 15
    /// People (and screen shares) one invite link may bring in over a broadcast's life: a
    /// shared guest link admits a studio's worth, and no more.
    public static let maxPerInvite = 2 * maxInStudio
    /// Participant records a broadcast may gather, however many invites it hands out.
    public static let maxParticipantRecords = 200
    public static let maxBannerLength = 200
    public static let maxCommentNameLength = 80
    public static let maxCommentLength = 300
    public static let maxCountdownLabelLength = 80
    /// The longest countdown: an hour.
    public static let maxCountdownSeconds = 3600

    /// Checks `stage` against the layouts the server loaded and the broadcast's participants.
    public static func validate(_ stage: Stage, layouts: Set<String>, participants: [UUID: ParticipantRole], now: Date = Date()) throws(StageError) {
        guard layouts.contains(stage.layout) else {
            throw StageError("unknown_layout", "layout \"\(stage.layout)\" does not exist; use one of \(layouts.sorted().joined(separator: ", "))")
        }
        let tiles = stage.participants.count + stage.streams.count + stage.clips.count
        guard tiles <= maxOnStage else {
            throw StageError("stage_full", "at most \(maxOnStage) people, streams and clips fit on stage, not \(tiles)")
        }
        guard Set(stage.streams).count == stage.streams.count else { throw StageError("duplicate_stream", "a stream is on the stage twice") }
        guard Set(stage.clips).count == stage.clips.count else { throw StageError("duplicate_clip", "a clip is on the stage twice") }
        guard !stage.clipFullscreen || !stage.clips.isEmpty else {
            throw StageError("no_clip_to_fill", "`clip_fullscreen` shows the stage's first clip; put one in `clips`")
        }
        var seen: Set<UUID> = []
        for id in stage.participants {
            guard seen.insert(id).inserted else { throw StageError("duplicate_participant", "\(id) is on the stage twice") }
            switch participants[id] {
            case nil: throw StageError("not_a_participant", "\(id) is not a participant of this broadcast")
            case .viewer?: throw StageError("viewer_on_stage", "\(id) is a viewer; only hosts and guests go on stage")
            case .host?, .guest?: continue
            }
        }
        if let banner = stage.banner {
            let text = banner.text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty, text.count <= maxBannerLength else {
                throw StageError("invalid_banner", "a banner's text is 1 to \(maxBannerLength) characters; send null for no banner")
            }
        }
        if let comment = stage.comment {
            let name = comment.name.trimmingCharacters(in: .whitespacesAndNewlines)
            let text = comment.text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !name.isEmpty, name.count <= maxCommentNameLength, !text.isEmpty, text.count <= maxCommentLength else {
                throw StageError("invalid_comment", "a comment on screen has a name of 1 to \(maxCommentNameLength) characters and a text of 1 to \(maxCommentLength); send null for none")
            }
        }
        if let problem = stage.theme.problem { throw StageError("invalid_theme", problem) }
        if let countdown = stage.countdown {
            let label = countdown.label.trimmingCharacters(in: .whitespacesAndNewlines)
            let latest = Int64(now.timeIntervalSince1970 * 1000) + Int64(maxCountdownSeconds + 5) * 1000
            guard !label.isEmpty, label.count <= maxCountdownLabelLength, countdown.until > 0, countdown.until <= latest else {
                throw StageError("invalid_countdown", "a countdown has a label of 1 to \(maxCountdownLabelLength) characters and ends within \(maxCountdownSeconds) seconds: send {\"label\", \"seconds\"}, or null for none")
            }
        }
    }
}
