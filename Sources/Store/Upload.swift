import FluentKit
import Foundation

/// An image a host uploaded for the stage: logo, background, overlay.
public final class Upload: Model, @unchecked Sendable {
    public static let schema = "uploads"

    @ID(key: .id) public var id: UUID?
    @Field(key: "owner_id") public var ownerID: UUID
    @Field(key: "original_name") public var originalName: String
    @Field(key: "content_type") public var contentType: String
    @Field(key: "size_bytes") public var sizeBytes: Int64
    /// Relative to the data directory's `uploads/` folder; chosen by the server, never the client.
    @Field(key: "file_name") public var fileName: String
    @Timestamp(key: "created_at", on: .create) public var createdAt: Date?

    public init() {}

    public init(ownerID: UUID, originalName: String, contentType: String, sizeBytes: Int64, fileName: String) {
        self.ownerID = ownerID
        self.originalName = originalName
        self.contentType = contentType
        self.sizeBytes = sizeBytes
        self.fileName = fileName
    }
}
