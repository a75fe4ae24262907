import FluentKit
import Foundation

/// One show: a studio room while it is being prepared, the program while it is live.
public final class Broadcast: Model, @unchecked Sendable {
    public static let schema = "broadcasts"

    @ID(key: .id) public var id: UUID?
    @Field(key: "owner_id") public var ownerID: UUID
    @Field(key: "title") public var title: String
    @Field(key: "description") public var description: String
    /// `BroadcastStatus.rawValue`; transitions are the Rooms module's to decide.
    @Field(key: "status") public var status: String
    @Field(key: "settings") public var settings: BroadcastSettings
    /// nil until the stage is first arranged: nobody on it, in the settings' layout.
    @OptionalField(key: "stage") public var stage: Stage?
    @OptionalField(key: "scheduled_at") public var scheduledAt: Date?
    @OptionalField(key: "started_at") public var startedAt: Date?
    @OptionalField(key: "ended_at") public var endedAt: Date?
    @Timestamp(key: "created_at", on: .create) public var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) public var updatedAt: Date?

    public init() {}

    public init(ownerID: UUID, title: String, description: String, settings: BroadcastSettings, scheduledAt: Date?) {
        self.ownerID = ownerID
        self.title = title
        self.description = description
        self.status = BroadcastStatus.scheduled.rawValue
        self.settings = settings
        self.scheduledAt = scheduledAt
    }
}

extension Broadcast {
    /// The stage as it stands, or the empty one a new studio starts with.
    public var currentStage: Stage {
        stage ?? Stage(layout: settings.layout)
    }
}

public enum BroadcastStatus: String, Codable, Sendable, CaseIterable {
    case scheduled
    case live
    case ended
}

/// How the program is produced; stored as JSON so new settings need no migration.
public struct BroadcastSettings: Codable, Sendable, Equatable {
    public static let resolutions = ["720p30", "1080p30", "1080p60"]

    /// A layout's name from the layouts folder (`GET /api/layouts`).
    public var layout: String
    public var resolution: String
    public var record: Bool

    public init(layout: String = "grid", resolution: String = "720p30", record: Bool = true) {
        self.layout = layout
        self.resolution = resolution
        self.record = record
    }
}
