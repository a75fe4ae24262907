import FluentKit
import Foundation

/// A short video in a host's library (an intro, an ad, a trailer) that the program can play
/// on stage. Its file and thumbnail are kept under the data directory's `clips/`, named by
/// the server.
public final class Clip: Model, @unchecked Sendable {
    public static let schema = "clips"

    @ID(key: .id) public var id: UUID?
    @Field(key: "owner_id") public var ownerID: UUID
    @Field(key: "name") public var name: String
    /// `uploading` while its pieces arrive, `ready` once checked and playable.
    @Field(key: "status") public var status: String
    /// `mp4` or `matroska` (empty while uploading): the demuxer the file was checked with, and the only one it is read with.
    @Field(key: "container") public var container: String
    @Field(key: "content_type") public var contentType: String
    /// Unguessable (a random UUID): a studio's `<video>` plays it without an account, as it draws uploaded images.
    @Field(key: "file_name") public var fileName: String
    @Field(key: "thumbnail_name") public var thumbnailName: String
    /// While uploading: the size announced; then the file's.
    @Field(key: "size_bytes") public var sizeBytes: Int64
    @Field(key: "width") public var width: Int
    @Field(key: "height") public var height: Int
    @Field(key: "duration_seconds") public var durationSeconds: Double
    @Field(key: "has_audio") public var hasAudio: Bool
    /// Plays again from the start at its end; otherwise it plays once and holds its last picture.
    @Field(key: "loop") public var loop: Bool
    @Timestamp(key: "created_at", on: .create) public var createdAt: Date?

    public init() {}

    /// Where clips and their thumbnails are kept: beside the uploaded images.
    public static func directory(uploads: URL) -> URL { uploads.appendingPathComponent("clips") }

    /// A clip about to be uploaded: what it is comes from its file once complete.
    public init(ownerID: UUID, name: String, announcedBytes: Int64, loop: Bool = false) {
        self.ownerID = ownerID
        self.name = name
        status = "uploading"
        container = ""
        contentType = ""
        fileName = ""
        thumbnailName = ""
        sizeBytes = announcedBytes
        width = 0
        height = 0
        durationSeconds = 0
        hasAudio = false
        self.loop = loop
    }
}
