import Cluster
import FluentKit
import Foundation
import HTTPTypes
import Hummingbird
import OutboundHTTP
import Rooms
import Store

/// A byte range of a file, from an HTTP `Range: bytes=…` header (RFC 9110 §14.1.2); only a
/// single range is served, as players ask.
struct ByteRange: Equatable {
    var start: Int64
    var end: Int64

    /// nil: no usable header (serve everything). Throws 416 for a range outside the file.
    static func parse(_ header: String?, size: Int64) throws -> ByteRange? {
        guard let header, header.hasPrefix("bytes="), !header.contains(",") else { return nil }
        let spec = header.dropFirst(6).trimmingCharacters(in: .whitespaces)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let unsatisfiable = APIError(.rangeNotSatisfiable, "range_not_satisfiable", "the file has \(size) bytes",
                                     headers: [.contentRange: "bytes */\(size)"])
        if parts[0].isEmpty {
            guard let suffix = Int64(parts[1]), suffix > 0, size > 0 else { throw unsatisfiable }
            return ByteRange(start: max(0, size - suffix), end: size - 1)
        }
        guard let start = Int64(parts[0]) else { return nil }
        guard start < size else { throw unsatisfiable }
        let end = parts[1].isEmpty ? size - 1 : min(size - 1, Int64(parts[1]) ?? -1)
        guard end >= start else { throw unsatisfiable }
        return ByteRange(start: start, end: end)
    }
}

extension API {
    func addMediaFileRoutes(to router: Router<AppContext>) {
        router.get("api/recordings/:id/download") { request, context in
            try await downloadRecording(request, context)
        }
        // A ladder's renditions: `/hls/{stream}/{rendition}/{file}`. The router wants the middle
        // parameter named as in the route below.
        router.get("hls/:id/:file/:inner") { request, context in
            try serveIngestHLS(request, context, streamID: context.parameters.get("id") ?? "", variant: context.parameters.get("file"),
                               file: context.parameters.get("inner") ?? "")
        }
        router.get("hls/:id/:file") { request, context in
            let id = context.parameters.get("id") ?? ""
            // Broadcasts' programs are named by UUID; anything else is an ingest stream.
            guard UUID(uuidString: id) != nil else { return try serveIngestHLS(request, context, streamID: id, file: context.parameters.get("file") ?? "") }
            return try await serveHLS(request, context)
        }
    }

    /// The recording's MP4, whole or by range, so a browser can seek in it. A `<video>`
    /// cannot send headers, so `?token=` is accepted too.
    private func downloadRecording(_ request: Request, _ context: AppContext) async throws -> Response {
        let recording = try await downloadableRecording(request, context)
        let path = configuration.recordingsDirectory.appendingPathComponent(recording.fileName).path
        return try await serveDownload(path: path, request, context, contentType: "video/mp4", name: recording.title, fileExtension: "mp4")
    }

    /// The recording in the path, for its owner; a download link may carry the token as
    /// `?token=`, since a browser's download sends no header.
    func downloadableRecording(_ request: Request, _ context: AppContext) async throws -> Recording {
        var context = context
        if context.identity == nil, let token = request.uri.queryParameters.get("token") {
            context.identity = try await auth.authenticate(bearer: token)
        }
        let userID = try context.requireUser()
        let id = try Validate.uuid(context.parameters.get("id"), what: "recording")
        guard let recording = try await Recording.find(id, on: store.db) else { throw APIError.notFound("recording") }
        guard recording.ownerID == userID else { throw APIError(.forbidden, "not_owner", "this recording belongs to someone else") }
        return recording
    }

    /// A recorded file as an attachment, streamed from disk in chunks (a recording of hours
    /// never sits in memory whole), with byte ranges.
    func serveDownload(path: String, _ request: Request, _ context: AppContext, contentType: String, name: String,
                       fileExtension: String) async throws -> Response {
        guard let size = ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? nil) else {
            throw APIError(.notFound, "recording_file_missing", "the recording's file is gone")
        }
        let range = try ByteRange.parse(request.headers[.range], size: size)
        let start = range?.start ?? 0
        let end = range?.end ?? size - 1
        let body = size == 0 ? ResponseBody() : try await FileIO().loadFile(path: path, range: Int(start)...Int(end), context: context)
        let safeName = name.filter { $0.isLetter || $0.isNumber || $0 == " " || $0 == "-" }.prefix(80)
        var headers: HTTPFields = [
            .contentType: contentType, .acceptRanges: "bytes",
            .contentDisposition: "attachment; filename=\"\(safeName.isEmpty ? "recording" : String(safeName)).\(fileExtension)\"",
        ]
        if range != nil { headers[.contentRange] = "bytes \(start)-\(end)/\(size)" }
        headers[.contentLength] = String(size == 0 ? 0 : end - start + 1)
        return Response(status: range == nil ? .ok : .partialContent, headers: headers, body: body)
    }

    /// The program's HLS: the live playlist changes every segment, segments never do. A
    /// program homed on another node is fetched from there, so every node serves it.
    private func serveHLS(_ request: Request, _ context: AppContext) async throws -> Response {
        let id = try Validate.uuid(context.parameters.get("id"), what: "broadcast")
        let file = context.parameters.get("file") ?? ""
        guard let contentType = HLSFiles.contentType(of: file) else { throw APIError(.notFound, "not_found", "no such HLS file") }
        let isPlaylist = file == HLSFiles.playlistName
        let path = configuration.hlsDirectory.appendingPathComponent(id.uuidString.lowercased()).appendingPathComponent(file).path
        if let data = FileManager.default.contents(atPath: path) {
            return Self.hlsResponse(data, contentType: contentType)
        }
        // A request another node forwarded is never forwarded again: no loops between nodes.
        if request.headers[Self.forwardedFrom] == nil, let data = await hlsFromHome(of: id, file: file) {
            return Self.hlsResponse(data, contentType: contentType)
        }
        throw APIError(.notFound, "not_live", "this broadcast has no HLS \(isPlaylist ? "playlist" : "segment") (is it live?)")
    }

    static let forwardedFrom = HTTPField.Name("X-Tally-Forwarded-From")!

    /// The file from the node that runs the broadcast's program, when that is another node.
    private func hlsFromHome(of id: UUID, file: String) async -> Data? {
        guard let peers, let home = try? await rooms.programs.homeNode(of: id), home != nodeID,
              let base = try? await nodes.nodes().first(where: { $0.id == home })?.url,
              let url = URL(string: "\(base)/hls/\(id.uuidString.lowercased())/\(file)") else { return nil }
        do {
            let answer = try await peers.send(OutboundHTTPRequest(method: .GET, url: url, headers: [(Self.forwardedFrom.rawName, nodeID)]))
            guard answer.status.code == 200 else { return nil }
            return Data(answer.body)
        } catch {
            logger.warning("HLS not fetched from the broadcast's home node", metadata: ["broadcast": "\(id)", "node": "\(home)", "error": "\(error)"])
            return nil
        }
    }

    /// Anyone may embed a player (CORS open); the live playlist changes every segment,
    /// segments and initialization sections never do.
    static func hlsResponse(_ data: Data, contentType: String) -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: contentType,
                .cacheControl: contentType == HLSFiles.contentType(of: HLSFiles.playlistName) ? "no-cache" : "public, max-age=3600",
                .accessControlAllowOrigin: "*",
            ],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
