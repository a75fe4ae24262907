import Foundation

/// A file uploaded in pieces that each name their byte offset (a participant's take, a
/// clip): a piece the server already has is taken as sent (its answer was lost), a gap is
/// refused with what the server has, so the sender resumes from there.
struct PiecewiseFile {
    enum Outcome: Equatable {
        /// What the file now holds.
        case received(Int64)
        case gap(received: Int64)
        case overLimit
    }

    let path: String

    var exists: Bool { FileManager.default.fileExists(atPath: path) }

    var received: Int64 {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0
    }

    /// Adds `bytes` at `offset` unless the file would pass `limit`; `ready` is asked (for
    /// free disk, say) only before bytes are actually written.
    func append(_ bytes: [UInt8], at offset: Int64, limit: Int64, ready: () throws -> Void) throws -> Outcome {
        let have = received
        if offset + Int64(bytes.count) <= have { return .received(have) }
        guard offset == have else { return .gap(received: have) }
        guard have + Int64(bytes.count) <= limit else { return .overLimit }
        try ready()
        guard let file = FileHandle(forWritingAtPath: path) else { throw CocoaError(.fileNoSuchFile) }
        defer { try? file.close() }
        try file.seekToEnd()
        try file.write(contentsOf: bytes)
        return .received(have + Int64(bytes.count))
    }
}
