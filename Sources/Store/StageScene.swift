import FluentKit
import Foundation

/// A named, saved arrangement of one broadcast's stage (layout, who and what stands on it,
/// banner, logo, background), shown again in one step; a countdown scene also starts a clock.
public final class StageScene: Model, @unchecked Sendable {
    public static let schema = "scenes"

    @ID(key: .id) public var id: UUID?
    @Parent(key: "broadcast_id") public var broadcast: Broadcast
    @Field(key: "name") public var name: String
    @Field(key: "stage") public var stage: Stage
    /// Showing the scene starts a countdown of this many seconds under its name.
    @OptionalField(key: "countdown_seconds") public var countdownSeconds: Int?
    @Timestamp(key: "created_at", on: .create) public var createdAt: Date?

    public init() {}

    public init(broadcastID: UUID, name: String, stage: Stage, countdownSeconds: Int? = nil) {
        $broadcast.id = broadcastID
        self.countdownSeconds = countdownSeconds
        self.name = name
        self.stage = stage
    }

    public var broadcastID: UUID { $broadcast.id }
}
