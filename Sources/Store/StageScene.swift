import FluentKit
import Foundation

/// A named, saved arrangement of one broadcast's stage (layout, who and what stands on it,
/// banner, logo, background), shown again in one step.
public final class StageScene: Model, @unchecked Sendable {
    public static let schema = "scenes"

    @ID(key: .id) public var id: UUID?
    @Parent(key: "broadcast_id") public var broadcast: Broadcast
    @Field(key: "name") public var name: String
    @Field(key: "stage") public var stage: Stage
    @Timestamp(key: "created_at", on: .create) public var createdAt: Date?

    public init() {}

    public init(broadcastID: UUID, name: String, stage: Stage) {
        $broadcast.id = broadcastID
        self.name = name
        self.stage = stage
    }

    public var broadcastID: UUID { $broadcast.id }
}
