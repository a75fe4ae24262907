import FluentKit
import Foundation

/// One participant's own recording of a show, beside the program's: either made on their
/// device and uploaded while the show runs (`local`; `server` is kept for the server's own
/// copy of what it received, not written yet). A page that reloads mid-show starts a new take.
public final class ParticipantTrack: Model, @unchecked Sendable {
    public static let schema = "participant_tracks"

    @ID(key: .id) public var id: UUID?
    /// The program's recording this track belongs to.
    @Field(key: "recording_id") public var recordingID: UUID
    @Field(key: "participant_id") public var participantID: UUID
    @Field(key: "name") public var name: String
    /// `local` or `server`.
    @Field(key: "source") public var source: String
    /// 1, 2…: each recorder the participant's page started during the show.
    @Field(key: "take") public var take: Int
    /// `uploading` (local, bytes still to come), `recording` (server, while live), `ready`, `failed`.
    @Field(key: "status") public var status: String
    @OptionalField(key: "error") public var error: String?
    /// Relative to the data directory's `recordings/` folder.
    @Field(key: "file_name") public var fileName: String
    @Field(key: "size_bytes") public var sizeBytes: Int64
    @Field(key: "width") public var width: Int
    @Field(key: "height") public var height: Int
    @Field(key: "duration_seconds") public var durationSeconds: Double
    /// The credential that started an upload (`user:…` or `invite:…`): only it may add to it.
    @Field(key: "holder") public var holder: String
    @Timestamp(key: "created_at", on: .create) public var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) public var updatedAt: Date?

    public init() {}

    public init(recordingID: UUID, participantID: UUID, name: String, source: String, take: Int, status: String, fileName: String, holder: String) {
        self.recordingID = recordingID
        self.participantID = participantID
        self.name = name
        self.source = source
        self.take = take
        self.status = status
        self.fileName = fileName
        self.sizeBytes = 0
        self.width = 0
        self.height = 0
        self.durationSeconds = 0
        self.holder = holder
    }
}
