import FluentKit
import Foundation
import Hummingbird
import Store

struct RecordingResponse: APIResponse {
    var id: UUID
    var broadcastId: UUID?
    var title: String
    var durationSeconds: Double
    var sizeBytes: Int64
    /// `recording`, `ready` or `failed`.
    var status: String
    /// Why a failed recording stopped; what was written before still plays.
    var error: String?
    /// 1, or later when the program moved to another node and recorded on there.
    var part: Int
    var createdAt: Date?
    var updatedAt: Date?
    /// Each participant's own recording of the show (only in the answer about one recording).
    var participants: [ParticipantTrackResponse]?

    init(_ recording: Recording, participants: [ParticipantTrackResponse]? = nil) throws {
        self.participants = participants
        id = try recording.requireID()
        broadcastId = recording.broadcastID
        title = recording.title
        durationSeconds = recording.durationSeconds
        sizeBytes = recording.sizeBytes
        status = recording.status
        error = recording.error
        part = recording.part
        createdAt = recording.createdAt
        updatedAt = recording.updatedAt
    }
}

struct RecordingListResponse: APIResponse {
    var recordings: [RecordingResponse]
}

extension API {
    func addRecordingRoutes(to router: Router<AppContext>) {
        let group = router.group("api/recordings")
        group.get { _, context in
            let userID = try context.requireUser()
            let recordings = try await Recording.query(on: store.db).filter(\.$ownerID == userID).sort(\.$createdAt, .descending).all()
            return RecordingListResponse(recordings: try recordings.map { try RecordingResponse($0) })
        }
        group.get(":id") { _, context in
            let recording = try await ownedRecording(context)
            let tracks = try await participantRecordings.tracks(recordingID: try recording.requireID())
            return try RecordingResponse(recording, participants: tracks.map { try ParticipantTrackResponse($0) })
        }
        group.delete(":id") { _, context in
            let recording = try await ownedRecording(context)
            guard recording.status != "recording" else {
                throw APIError(.conflict, "recording_in_progress", "end the broadcast before deleting its recording")
            }
            // Each participant's files go with it (their rows by the foreign key's cascade).
            try await participantRecordings.removeFiles(recordingID: try recording.requireID())
            try await recording.delete(on: store.db)
            let file = configuration.recordingsDirectory.appendingPathComponent(recording.fileName)
            do {
                try FileManager.default.removeItem(at: file)
            } catch CocoaError.fileNoSuchFile {
                logger.warning("recording file was already gone", metadata: ["recording": "\(recording.loggedID)"])
            }
            logger.info("recording deleted", metadata: ["recording": "\(recording.loggedID)"])
            return HTTPResponse.Status.noContent
        }
    }

    private func ownedRecording(_ context: AppContext) async throws -> Recording {
        let userID = try context.requireUser()
        let id = try Validate.uuid(context.parameters.get("id"), what: "recording")
        guard let recording = try await Recording.find(id, on: store.db) else { throw APIError.notFound("recording") }
        guard recording.ownerID == userID else { throw APIError(.forbidden, "not_owner", "this recording belongs to someone else") }
        return recording
    }
}
