import Foundation
import Hummingbird
import NIOCore
import StudioFiles

/// Serves the studio built into the binary (`web/`) through Hummingbird's `FileMiddleware`,
/// as it serves a folder when `TALLY_WEB_DIR` names one.
struct EmbeddedFileProvider: FileProvider {
    struct FileAttributes: FileMiddlewareFileAttributes {
        let isFolder: Bool
        let size: Int
        /// The files change only with the binary: they are as new as this process.
        let modificationDate: Date
    }

    private static let startedAt = Date()
    let root: String

    func getFileIdentifier(_ path: String) -> String? {
        let trimmed = path.hasSuffix("/") ? String(path.dropLast()) : path
        return root + trimmed
    }

    func getAttributes(id: String) async throws -> FileAttributes? {
        if let file = StudioFiles.file(id) {
            return FileAttributes(isFolder: false, size: file.count, modificationDate: Self.startedAt)
        }
        guard !StudioFiles.files(under: id + "/").isEmpty else { return nil }
        return FileAttributes(isFolder: true, size: 0, modificationDate: Self.startedAt)
    }

    func loadFile(id: String, context: some RequestContext) async throws -> ResponseBody {
        guard let file = StudioFiles.file(id) else { throw HTTPError(.notFound) }
        return ResponseBody(byteBuffer: ByteBuffer(bytes: file))
    }

    func loadFile(id: String, range: ClosedRange<Int>, context: some RequestContext) async throws -> ResponseBody {
        guard let file = StudioFiles.file(id), range.lowerBound >= 0, range.upperBound < file.count else { throw HTTPError(.rangeNotSatisfiable) }
        return ResponseBody(byteBuffer: ByteBuffer(bytes: file[file.startIndex + range.lowerBound...file.startIndex + range.upperBound]))
    }
}
