import FluentKit
import Foundation
import Hummingbird
import Rooms
import NIOCore
import Store

struct UploadResponse: APIResponse {
    var id: UUID
    var url: String
    var contentType: String
    var sizeBytes: Int64
    var originalName: String
    var createdAt: Date?

    init(_ upload: Upload) throws {
        id = try upload.requireID()
        url = "/uploads/\(upload.fileName)"
        contentType = upload.contentType
        sizeBytes = upload.sizeBytes
        originalName = upload.originalName
        createdAt = upload.createdAt
    }
}

/// The image formats the stage can draw, recognised by their first bytes, not by what the
/// client claims.
enum ImageFormat: String, CaseIterable {
    case png, jpeg, webp

    var contentType: String { "image/\(rawValue)" }

    static func sniff(_ bytes: ByteBuffer) -> ImageFormat? {
        guard let head = bytes.getBytes(at: bytes.readerIndex, length: min(12, bytes.readableBytes)) else { return nil }
        if head.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if head.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        if head.count == 12, head.starts(with: Array("RIFF".utf8)), Array(head[8..<12]) == Array("WEBP".utf8) { return .webp }
        return nil
    }
}

extension API {
    /// The longest side an upload may have: a 4K stage's width.
    static let maxImageSide = 4096
    /// Images one account keeps.
    static let maxUploadsPerUser = 200

    func addUploadRoutes(to router: Router<AppContext>) {
        router.post("api/upload") { request, context in try await upload(request, context) }
        router.get("uploads/:file") { _, context in try await serveUpload(context) }
        router.delete("api/upload/:id") { _, context in
            let userID = try context.requireUser()
            let id = try Validate.uuid(context.parameters.get("id"), what: "upload")
            guard let upload = try await Upload.find(id, on: store.db), upload.ownerID == userID else { throw APIError.notFound("upload") }
            try? FileManager.default.removeItem(at: configuration.uploadsDirectory.appendingPathComponent(upload.fileName))
            try await upload.delete(on: store.db)
            return HTTPResponse.Status.noContent
        }
    }

    /// The body is the image itself (`Content-Type: image/png`, `image/jpeg` or `image/webp`);
    /// `?name=` keeps the original file name for the dashboard.
    private func upload(_ request: Request, _ context: AppContext) async throws -> EditedResponse<UploadResponse> {
        let userID = try context.requireUser()
        if let length = request.headers[.contentLength].flatMap(Int.init), length > configuration.maxUploadBytes {
            throw APIError(.contentTooLarge, "payload_too_large", "images must be at most \(configuration.maxUploadBytes / 1_048_576) MB")
        }
        let declared = request.headers[.contentType]?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        let allowed = ImageFormat.allCases.map(\.contentType)
        guard let declared, allowed.contains(declared) else {
            throw APIError(.unsupportedMediaType, "unsupported_media_type", "send the image as the body with Content-Type \(allowed.joined(separator: ", "))")
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: configuration.maxUploadBytes)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "payload_too_large", "images must be at most \(configuration.maxUploadBytes / 1_048_576) MB")
        }
        guard let format = ImageFormat.sniff(body), format.contentType == declared else {
            throw APIError(.unsupportedMediaType, "unsupported_media_type", "the body is not a \(declared) image")
        }
        guard let size = StageImage.declaredSize(Array(body.readableBytesView.prefix(64 << 10))) else {
            throw APIError(.badRequest, "invalid_image", "the image's header gives no size; it cannot be drawn")
        }
        guard size.width <= Self.maxImageSide, size.height <= Self.maxImageSide, size.width * size.height <= StageImage.maxPixels else {
            throw APIError(.contentTooLarge, "image_too_large",
                           "the image is \(size.width)×\(size.height) pixels; at most \(Self.maxImageSide)×\(Self.maxImageSide) fit on a stage")
        }
        let existing = try await Upload.query(on: store.db).filter(\.$ownerID == userID).count()
        guard existing < Self.maxUploadsPerUser else {
            throw APIError(.conflict, "too_many_uploads", "an account keeps at most \(Self.maxUploadsPerUser) images; delete some (DELETE /api/upload/{id}) first")
        }
        let id = UUID()
        let fileName = "\(id.uuidString.lowercased()).\(format == .jpeg ? "jpg" : format.rawValue)"
        let directory = configuration.uploadsDirectory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: directory.appendingPathComponent(fileName).path, contents: Data(body.readableBytesView)) else {
            throw APIError(.internalServerError, "storage_failed", "the image could not be stored")
        }
        let originalName = request.uri.queryParameters["name"].map(String.init)
            .flatMap { try? Validate.text($0, field: "name", max: 200) } ?? fileName
        let upload = Upload(ownerID: userID, originalName: originalName, contentType: format.contentType, sizeBytes: Int64(body.readableBytes), fileName: fileName)
        upload.id = id
        try await upload.create(on: store.db)
        logger.info("upload stored", metadata: ["upload": "\(id)", "bytes": "\(body.readableBytes)"])
        return try UploadResponse(upload).created()
    }

    /// Uploaded images are public by unguessable name: guests' studios and the compositor
    /// draw them without an account.
    private func serveUpload(_ context: AppContext) async throws -> Response {
        let name = context.parameters.get("file") ?? ""
        guard let upload = try await Upload.query(on: store.db).filter(\.$fileName == name).first() else {
            throw APIError.notFound("upload")
        }
        let path = configuration.uploadsDirectory.appendingPathComponent(upload.fileName).path
        guard let data = FileManager.default.contents(atPath: path) else { throw APIError.notFound("upload") }
        return Response(
            status: .ok,
            headers: [.contentType: upload.contentType, .cacheControl: "public, max-age=31536000, immutable", .init("X-Content-Type-Options")!: "nosniff"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
