import FluentKit
import Foundation

/// A recorded program, kept after its broadcast is deleted so the host can still download it.
public final class Recording: Model, @unchecked Sendable {
    public static let schema = "recordings"

    @ID(key: .id) public var id: UUID?
    @OptionalField(key: "broadcast_id") public var broadcastID: UUID?
    @Field(key: "owner_id") public var ownerID: UUID
    @Field(key: "title") public var title: String
    /// Relative to the data directory's `recordings/` folder.
    @Field(key: "file_name") public var fileName: String
    @Field(key: "duration_seconds") public var durationSeconds: Double
    @Field(key: "size_bytes") public var sizeBytes: Int64
    /// `recording`, `ready`, or `failed` (with `error`: what stopped it; what was written plays).
    @Field(key: "status") public var status: String
    @OptionalField(key: "error") public var error: String?
    /// 1, or later when the program moved to another node and went on recording there.
    @Field(key: "part") public var part: Int
    @Timestamp(key: "created_at", on: .create) public var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) public var updatedAt: Date?

    public init() {}

    public init(broadcastID: UUID?, ownerID: UUID, title: String, fileName: String, part: Int = 1) {
        self.broadcastID = broadcastID
        self.part = part
        self.ownerID = ownerID
        self.title = title
        self.fileName = fileName
        self.durationSeconds = 0
        self.sizeBytes = 0
        self.status = "recording"
    }
}
