import FluentKit
import Foundation
import HTTPTypes
import Hummingbird
import Rooms
import Store

/// A clip in a host's library.
struct ClipResponse: APIResponse {
    var id: UUID
    var name: String
    /// `uploading` or `ready`.
    var status: String
    var loop: Bool
    var width: Int
    var height: Int
    var durationSeconds: Double
    var hasAudio: Bool
    var sizeBytes: Int64
    /// Send the next piece from this offset on (`PATCH upload_url` with `Upload-Offset`).
    var receivedBytes: Int64
    var maxBytes: Int64
    var uploadUrl: String
    /// Ready clips only: public by unguessable name, as uploaded images are, so a guest's
    /// studio plays the clip on its stage without an account.
    var url: String?
    var thumbnailUrl: String?
    var createdAt: Date?

    init(_ clip: Clip, receivedBytes: Int64, maxBytes: Int64) throws {
        id = try clip.requireID()
        name = clip.name
        status = clip.status
        loop = clip.loop
        width = clip.width
        height = clip.height
        durationSeconds = clip.durationSeconds
        hasAudio = clip.hasAudio
        sizeBytes = clip.sizeBytes
        self.receivedBytes = receivedBytes
        self.maxBytes = maxBytes
        uploadUrl = "/api/clips/\(id.uuidString.lowercased())/upload"
        let ready = clip.status == "ready"
        url = ready ? "/clips/\(clip.fileName)" : nil
        thumbnailUrl = ready ? "/clips/\(clip.thumbnailName)" : nil
        createdAt = clip.createdAt
    }
}

struct ClipListResponse: APIResponse {
    var clips: [ClipResponse]
}

struct CreateClipRequest: Decodable {
    var name: String
    var sizeBytes: Int64
    var loop: Bool?
}

struct UpdateClipRequest: Decodable {
    var name: String?
    var loop: Bool?
}

extension API {
    func addClipRoutes(to router: Router<AppContext>) {
        let group = router.group("api/clips")
        group.post("") { request, context -> EditedResponse<ClipResponse> in
            let owner = try context.requireUser()
            let body = try await request.decode(as: CreateClipRequest.self, context: context)
            let name = try Validate.text(body.name, field: "name", max: 120)
            guard body.sizeBytes > 0 else { throw APIError(.badRequest, "invalid_field", "`size_bytes` is the clip's size in bytes, more than 0") }
            let clip = try await clipCall { try await clips.create(owner: owner, name: name, bytes: body.sizeBytes, loop: body.loop ?? false) }
            return try ClipResponse(clip, receivedBytes: 0, maxBytes: await clips.maxBytes).created()
        }
        group.get("") { _, context -> ClipListResponse in
            let owner = try context.requireUser()
            let maxBytes = await clips.maxBytes
            return ClipListResponse(clips: try await clips.clips(owner: owner).map { try ClipResponse($0.clip, receivedBytes: $0.receivedBytes, maxBytes: maxBytes) })
        }
        group.get(":id") { _, context -> ClipResponse in
            let owner = try context.requireUser()
            let id = try Validate.uuid(context.parameters.get("id"), what: "clip")
            let (clip, received) = try await clipCall { try await clips.clip(id, owner: owner) }
            return try ClipResponse(clip, receivedBytes: received, maxBytes: await clips.maxBytes)
        }
        group.patch(":id") { request, context -> ClipResponse in
            let owner = try context.requireUser()
            let id = try Validate.uuid(context.parameters.get("id"), what: "clip")
            let body = try await request.decode(as: UpdateClipRequest.self, context: context)
            let name = try body.name.map { try Validate.text($0, field: "name", max: 120) }
            let clip = try await clipCall { try await clips.update(id, owner: owner, name: name, loop: body.loop) }
            // A clip on a live stage plays on with its new setting.
            if body.loop != nil { await restage(clip: id, owner: owner, removing: false) }
            let (current, received) = try await clipCall { try await clips.clip(try clip.requireID(), owner: owner) }
            return try ClipResponse(current, receivedBytes: received, maxBytes: await clips.maxBytes)
        }
        group.delete(":id") { _, context in
            let owner = try context.requireUser()
            let id = try Validate.uuid(context.parameters.get("id"), what: "clip")
            _ = try await clipCall { try await clips.clip(id, owner: owner) }
            await restage(clip: id, owner: owner, removing: true)
            try await clipCall { try await clips.delete(id, owner: owner) }
            return HTTPResponse.Status.noContent
        }
        // The next piece, at the byte offset `Upload-Offset` names.
        group.patch(":id/upload") { request, context -> ClipResponse in
            let owner = try context.requireUser()
            let id = try Validate.uuid(context.parameters.get("id"), what: "clip")
            let (offset, bytes) = try await uploadPiece(request, of: "a clip")
            _ = try await clipCall { try await clips.append(id, owner: owner, offset: offset, bytes: bytes) }
            let (clip, received) = try await clipCall { try await clips.clip(id, owner: owner) }
            return try ClipResponse(clip, receivedBytes: received, maxBytes: await clips.maxBytes)
        }
        group.post(":id/complete") { _, context -> ClipResponse in
            let owner = try context.requireUser()
            let id = try Validate.uuid(context.parameters.get("id"), what: "clip")
            let clip = try await clipCall { try await clips.complete(id, owner: owner) }
            return try ClipResponse(clip, receivedBytes: clip.sizeBytes, maxBytes: await clips.maxBytes)
        }
        router.get("clips/:file") { request, context in
            guard let file = try await clips.file(named: context.parameters.get("file") ?? "") else { throw APIError.notFound("clip") }
            var response = try await serveDownload(path: file.path, request, context, contentType: file.contentType, name: "clip", fileExtension: "")
            response.headers[.contentDisposition] = nil
            response.headers[.cacheControl] = "public, max-age=31536000, immutable"
            response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
            return response
        }
    }

    /// Puts the clip's new setting on every stage of the owner's that shows it, or takes it
    /// off them; a live program follows.
    private func restage(clip: UUID, owner: UUID, removing: Bool) async {
        guard let broadcasts = try? await Broadcast.query(on: store.db).filter(\.$ownerID == owner).all() else { return }
        for broadcast in broadcasts where broadcast.currentStage.clips.contains(clip) {
            var stage = broadcast.currentStage
            if removing {
                stage.clips.removeAll { $0 == clip }
                if stage.clips.isEmpty { stage.clipFullscreen = false }
            }
            do {
                _ = try await rooms.arrange(stage, in: broadcast)
            } catch {
                logger.warning("stage not updated for a clip", metadata: ["clip": "\(clip)", "error": "\(error)"])
            }
        }
    }

    /// The library's refusals as API errors.
    private func clipCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let failure as ClipLibrary.Failure {
            switch failure {
            case .notFound: throw APIError.notFound("clip")
            case .tooMany: throw APIError(.conflict, "too_many_clips", failure.description)
            case .tooLarge: throw APIError(.contentTooLarge, "clip_too_large", failure.description)
            case .offsetMismatch(let received):
                throw APIError(.conflict, "offset_mismatch", failure.description, headers: [Self.uploadOffset: String(received)])
            case .finished: throw APIError(.conflict, "clip_uploaded", failure.description)
            case .notUploaded: throw APIError(.conflict, "upload_incomplete", failure.description)
            case .beingChecked: throw APIError(.conflict, "clip_being_checked", failure.description, headers: [.retryAfter: "1"])
            case .diskFull: throw APIError(.serviceUnavailable, "disk_full", failure.description, headers: [.retryAfter: "30"])
            case .invalid: throw APIError(.unprocessableContent, "invalid_clip", failure.description)
            case .onAnotherNode: throw APIError(.serviceUnavailable, "upload_on_another_node", failure.description, headers: [.retryAfter: "2"])
            }
        }
    }
}
