import FluentKit
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Rooms
import Store

/// One participant's own recording of a show, as the host sees it in the recording.
struct ParticipantTrackResponse: Encodable {
    var id: UUID
    var participantId: UUID
    var name: String
    /// `local`: recorded on the participant's device and uploaded; `server`: written by the
    /// server from the media it received.
    var source: String
    var take: Int
    /// `uploading`, `recording`, `ready` or `failed`.
    var status: String
    var error: String?
    var width: Int
    var height: Int
    var durationSeconds: Double
    var sizeBytes: Int64
    var downloadUrl: String

    init(_ track: ParticipantTrack) throws {
        id = try track.requireID()
        participantId = track.participantID
        name = track.name
        source = track.source
        take = track.take
        status = track.status
        error = track.error
        width = track.width
        height = track.height
        durationSeconds = track.durationSeconds
        sizeBytes = track.sizeBytes
        downloadUrl = "/api/recordings/\(track.recordingID.uuidString.lowercased())/participants/\(id.uuidString.lowercased())/download"
    }
}

/// A take being uploaded, as the participant's page sees it.
struct UploadingTrackResponse: APIResponse {
    var id: UUID
    var take: Int
    var status: String
    var uploadUrl: String
    /// Send from this offset on.
    var receivedBytes: Int64
    var maxBytes: Int64

    init(_ track: ParticipantTrack, receivedBytes: Int64, maxBytes: Int64) throws {
        id = try track.requireID()
        take = track.take
        status = track.status
        uploadUrl = "/api/participant-recordings/\(id.uuidString.lowercased())"
        self.receivedBytes = receivedBytes
        self.maxBytes = maxBytes
    }
}

struct StartParticipantRecording: Decodable {
    var participantId: String
}

extension API {
    static let uploadOffset = HTTPField.Name("Upload-Offset")!

    func addParticipantRecordingRoutes(to router: Router<AppContext>) {
        // A participant starts a take of their own recording while the show is recorded.
        router.post("api/broadcasts/:id/participant-recordings") { request, context -> EditedResponse<UploadingTrackResponse> in
            let broadcast = try await memberBroadcast(context, parameter: "id")
            let body = try await request.decode(as: StartParticipantRecording.self, context: context)
            let participantID = try Validate.uuid(body.participantId, what: "participant")
            guard let participant = try await Participant.find(participantID, on: store.db), isCaller(participant, context) else {
                throw APIError(.forbidden, "not_participant", ParticipantRecordings.Failure.notParticipant.description)
            }
            let track = try await recordingCall {
                try await participantRecordings.startLocal(broadcastID: try broadcast.requireID(), participant: participant, holder: try holderKey(context))
            }
            return try UploadingTrackResponse(track, receivedBytes: 0, maxBytes: configuration.maxRecordingBytes).created()
        }
        let group = router.group("api/participant-recordings")
        group.get(":id") { _, context -> UploadingTrackResponse in
            let id = try Validate.uuid(context.parameters.get("id"), what: "participant_recording")
            let (track, received) = try await recordingCall { try await participantRecordings.track(id, holder: try holderKey(context)) }
            return try UploadingTrackResponse(track, receivedBytes: received, maxBytes: configuration.maxRecordingBytes)
        }
        // The next piece, at the byte offset `Upload-Offset` names.
        group.patch(":id") { request, context -> UploadingTrackResponse in
            let id = try Validate.uuid(context.parameters.get("id"), what: "participant_recording")
            // A piece is an upload like any other: a few seconds of 4K at a high bit rate fit.
            let (offset, bytes) = try await uploadPiece(request, of: "a recording")
            let holder = try holderKey(context)
            _ = try await recordingCall { try await participantRecordings.append(id, holder: holder, offset: offset, bytes: bytes) }
            let (track, received) = try await recordingCall { try await participantRecordings.track(id, holder: holder) }
            return try UploadingTrackResponse(track, receivedBytes: received, maxBytes: configuration.maxRecordingBytes)
        }
        group.post(":id/complete") { _, context -> UploadingTrackResponse in
            let id = try Validate.uuid(context.parameters.get("id"), what: "participant_recording")
            let holder = try holderKey(context)
            let track = try await recordingCall { try await participantRecordings.complete(id, holder: holder) }
            return try UploadingTrackResponse(track, receivedBytes: track.sizeBytes, maxBytes: configuration.maxRecordingBytes)
        }
        router.get("api/recordings/:id/participants/:track/download") { request, context in
            let recording = try await downloadableRecording(request, context)
            let trackID = try Validate.uuid(context.parameters.get("track"), what: "participant_recording")
            guard let track = try await ParticipantTrack.find(trackID, on: store.db), track.recordingID == recording.id,
                  track.status == "ready" || track.status == "failed" else {
                throw APIError(.notFound, "participant_recording_not_found", "no such participant recording")
            }
            // The page's upload is WebM; the server's copy is Matroska, which takes any codec a browser sends.
            let matroska = track.source == "server"
            return try await serveDownload(path: await participantRecordings.file(of: track).path, request, context,
                                           contentType: matroska ? "video/x-matroska" : "video/webm",
                                           name: "\(recording.title) - \(track.name) - \(track.source) \(track.take)", fileExtension: matroska ? "mkv" : "webm")
        }
    }

    /// Whether the caller is this participant: the host by their account, a guest by the
    /// invite they came in with.
    private func isCaller(_ participant: Participant, _ context: AppContext) -> Bool {
        switch context.identity {
        case .user(let id, _, _, _)?: participant.userID == id
        case .guest(let broadcastID, let inviteID, _)?: participant.broadcastID == broadcastID && participant.inviteID == inviteID
        default: false
        }
    }

    /// A piece of something uploaded in pieces: its byte offset (`Upload-Offset`) and its
    /// bytes, at most the upload limit.
    func uploadPiece(_ request: Request, of what: String) async throws -> (offset: Int64, bytes: [UInt8]) {
        guard let offsetText = request.headers[Self.uploadOffset], let offset = Int64(offsetText), offset >= 0 else {
            throw APIError(.badRequest, "invalid_field", "send the piece's byte offset in the Upload-Offset header")
        }
        let tooLarge = APIError(.contentTooLarge, "payload_too_large", "send \(what) in pieces of at most \(configuration.maxUploadBytes >> 20) MB")
        if let length = request.headers[.contentLength].flatMap(Int.init), length > configuration.maxUploadBytes { throw tooLarge }
        do {
            return (offset, Array(try await request.body.collect(upTo: configuration.maxUploadBytes).readableBytesView))
        } catch is NIOTooManyBytesError {
            throw tooLarge
        }
    }

    private func holderKey(_ context: AppContext) throws -> String {
        guard let identity = context.identity, identity != .operator else { throw APIError.unauthorized }
        return identity.sessionKey
    }

    /// The recording service's refusals as API errors.
    private func recordingCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let failure as ParticipantRecordings.Failure {
            switch failure {
            case .notParticipant: throw APIError(.forbidden, "not_participant", failure.description)
            case .notRecording: throw APIError(.conflict, "not_recording", failure.description)
            case .tooManyTakes: throw APIError(.conflict, "too_many_takes", failure.description)
            case .notFound: throw APIError(.notFound, "participant_recording_not_found", "no such participant recording")
            case .notHolder: throw APIError(.forbidden, "not_holder", failure.description)
            case .finished: throw APIError(.conflict, "recording_complete", failure.description)
            case .offsetMismatch(let received):
                throw APIError(.conflict, "offset_mismatch", failure.description, headers: [Self.uploadOffset: String(received)])
            case .tooLarge: throw APIError(.contentTooLarge, "recording_too_large", failure.description)
            case .diskFull: throw APIError(.serviceUnavailable, "disk_full", failure.description, headers: [.retryAfter: "30"])
            case .unreadable: throw APIError(.unprocessableContent, "unreadable_recording", failure.description)
            case .onAnotherNode: throw APIError(.serviceUnavailable, "upload_on_another_node", failure.description, headers: [.retryAfter: "2"])
            }
        }
    }
}
