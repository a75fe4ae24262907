import FluentKit
import Foundation
import Logging
import MediaCodecs
import Store

/// Each host's library of short videos (intros, ads, trailers) for the stage. A clip is
/// uploaded in pieces that name their byte offset, as a participant's recording is (a
/// request carries at most the upload limit, and a dropped connection resumes from what the
/// server has); once complete, its first bytes must say MP4/MOV or Matroska/WebM, libav*
/// must decode a picture from it within the size and length allowed, and its first picture
/// becomes the thumbnail. Anything else is refused and deleted.
///
/// A clip's file is kept on the node that took its upload.
public actor ClipLibrary {
    public struct Settings: Sendable {
        public var uploadsDirectory: URL
        public var maxBytes: Int64
        public var maxClipsPerUser: Int
        public var maxSeconds: Double
        public var maxSide: Int
        /// Below this much free disk, uploads are refused.
        public var minFreeBytes: Int64

        public init(uploadsDirectory: URL, maxBytes: Int64, maxClipsPerUser: Int = 50, maxSeconds: Double = 600, maxSide: Int = 4096,
                    minFreeBytes: Int64) {
            self.uploadsDirectory = uploadsDirectory
            self.maxBytes = maxBytes
            self.maxClipsPerUser = maxClipsPerUser
            self.maxSeconds = maxSeconds
            self.maxSide = maxSide
            self.minFreeBytes = minFreeBytes
        }

        var directory: URL { Clip.directory(uploads: uploadsDirectory) }
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case notFound
        case tooMany(Int)
        case tooLarge(Int64)
        case offsetMismatch(received: Int64)
        case finished
        case notUploaded
        case beingChecked
        case diskFull
        case invalid(String)
        case onAnotherNode

        public var description: String {
            switch self {
            case .notFound: "no such clip in your library"
            case .tooMany(let limit): "a library holds at most \(limit) clips; delete some (DELETE /api/clips/{id}) first"
            case .tooLarge(let limit): "a clip may be at most \(limit >> 20) MB"
            case .offsetMismatch(let received): "the server has \(received) bytes of this clip; send from there"
            case .finished: "this clip is already uploaded"
            case .notUploaded: "this clip's upload is not complete; send its pieces, then POST …/complete"
            case .beingChecked: "this clip is being checked; ask for it again in a moment"
            case .diskFull: "the server's disk is nearly full; clips cannot be uploaded now"
            case .invalid(let reason): "the file is not a clip the program can play: \(reason)"
            case .onAnotherNode: "this clip is being uploaded to another server of this deployment; try again"
            }
        }
    }

    private let settings: Settings
    private let store: Store
    /// Clips whose files are being checked now.
    private var checking: Set<UUID> = []
    /// Checks decode, so they take turns on one thread of their own, off the threads the
    /// server's other tasks share.
    private static let checks = DispatchQueue(label: "tally.clip-check")
    private let logger: Logger

    public init(settings: Settings, store: Store, logger: Logger) {
        self.settings = settings
        self.store = store
        self.logger = logger
    }

    public var maxBytes: Int64 { settings.maxBytes }

    /// Announces an upload of `bytes`; its pieces follow.
    public func create(owner: UUID, name: String, bytes: Int64, loop: Bool) async throws -> Clip {
        guard bytes > 0, bytes <= settings.maxBytes else { throw Failure.tooLarge(settings.maxBytes) }
        let owned = try await Clip.query(on: store.db).filter(\.$ownerID == owner).count()
        guard owned < settings.maxClipsPerUser else { throw Failure.tooMany(settings.maxClipsPerUser) }
        guard !diskShort(adding: bytes) else { throw Failure.diskFull }
        let clip = Clip(ownerID: owner, name: name, announcedBytes: bytes, loop: loop)
        let id = UUID()
        clip.id = id
        try FileManager.default.createDirectory(at: settings.directory, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: upload(id).path, contents: nil) else { throw Failure.diskFull }
        try await clip.create(on: store.db)
        logger.info("clip upload started", metadata: ["clip": "\(id)", "bytes": "\(bytes)"])
        return clip
    }

    public func clip(_ id: UUID, owner: UUID) async throws -> (clip: Clip, receivedBytes: Int64) {
        let clip = try await owned(id, owner: owner)
        guard clip.status == "uploading" else { return (clip, clip.sizeBytes) }
        try requireUploadHere(id)
        return (clip, received(id))
    }

    public func clips(owner: UUID) async throws -> [(clip: Clip, receivedBytes: Int64)] {
        try await Clip.query(on: store.db).filter(\.$ownerID == owner).sort(\.$createdAt).all().map { clip in
            let id = try clip.requireID()
            return (clip, clip.status == "uploading" ? received(id) : clip.sizeBytes)
        }
    }

    /// Adds `bytes` at `offset`: a piece the server already has is taken as sent, a gap is
    /// refused with what the server has. Returns the bytes received.
    public func append(_ id: UUID, owner: UUID, offset: Int64, bytes: [UInt8]) async throws -> Int64 {
        let clip = try await owned(id, owner: owner)
        guard clip.status == "uploading" else { throw Failure.finished }
        try requireUploadHere(id)
        let outcome = try upload(id).append(bytes, at: offset, limit: clip.sizeBytes) {
            guard !diskShort(adding: Int64(bytes.count)) else { throw Failure.diskFull }
        }
        switch outcome {
        case .received(let bytes): return bytes
        case .gap(let received): throw Failure.offsetMismatch(received: received)
        case .overLimit: throw Failure.tooLarge(min(clip.sizeBytes, settings.maxBytes))
        }
    }

    /// Every piece is in: the file is checked, its thumbnail made, and the clip is ready, or
    /// refused and deleted.
    public func complete(_ id: UUID, owner: UUID) async throws -> Clip {
        let clip = try await owned(id, owner: owner)
        guard clip.status == "uploading" else { return clip }
        try requireUploadHere(id)
        let uploaded = upload(id).path
        let received = self.received(id)
        guard received == clip.sizeBytes else { throw Failure.notUploaded }
        // The check suspends this actor: a second `complete` of the same clip meanwhile must
        // not find its file moved and delete the clip the first one is making ready.
        guard checking.insert(id).inserted else { throw Failure.beingChecked }
        defer { checking.remove(id) }
        do {
            let checked = try await withCheckedThrowingContinuation { [settings] continuation in
                Self.checks.async { continuation.resume(with: Result { try Self.check(uploaded, settings: settings) }) }
            }
            let stem = UUID().uuidString.lowercased()
            clip.fileName = "\(stem).\(checked.container == .mp4 ? "mp4" : "webm")"
            clip.thumbnailName = "\(stem).jpg"
            try FileManager.default.moveItem(atPath: uploaded, toPath: settings.directory.appendingPathComponent(clip.fileName).path)
            guard FileManager.default.createFile(atPath: settings.directory.appendingPathComponent(clip.thumbnailName).path, contents: Data(checked.thumbnail)) else {
                throw Failure.diskFull
            }
            clip.container = checked.container.rawValue
            clip.contentType = checked.container == .mp4 ? "video/mp4" : "video/webm"
            clip.width = checked.info.width
            clip.height = checked.info.height
            clip.durationSeconds = checked.info.durationSeconds
            clip.hasAudio = checked.info.hasAudio
            clip.status = "ready"
            try await clip.save(on: store.db)
        } catch {
            removeFiles(of: clip)
            try? await clip.delete(on: store.db)
            logger.info("clip refused", metadata: ["clip": "\(id)", "error": "\(error)"])
            if let failure = error as? Failure { throw failure }
            throw Failure.invalid("\(error)")
        }
        logger.info("clip ready", metadata: ["clip": "\(id)", "size": "\(clip.width)x\(clip.height)", "seconds": "\(clip.durationSeconds)"])
        return clip
    }

    public func update(_ id: UUID, owner: UUID, name: String?, loop: Bool?) async throws -> Clip {
        let clip = try await owned(id, owner: owner)
        if let name { clip.name = name }
        if let loop { clip.loop = loop }
        try await clip.save(on: store.db)
        return clip
    }

    /// Deletes the clip and its files; taking it off stages is the caller's part.
    public func delete(_ id: UUID, owner: UUID) async throws {
        let clip = try await owned(id, owner: owner)
        removeFiles(of: clip)
        try await clip.delete(on: store.db)
        logger.info("clip deleted", metadata: ["clip": "\(id)"])
    }

    /// A ready clip's file by its public name, for a studio's `<video>`.
    public func file(named name: String) async throws -> (path: String, contentType: String)? {
        guard !name.isEmpty, !name.contains("/") else { return nil }
        if let clip = try await Clip.query(on: store.db).filter(\.$fileName == name).filter(\.$status == "ready").first() {
            return (settings.directory.appendingPathComponent(name).path, clip.contentType)
        }
        if try await Clip.query(on: store.db).filter(\.$thumbnailName == name).filter(\.$status == "ready").first() != nil {
            return (settings.directory.appendingPathComponent(name).path, "image/jpeg")
        }
        return nil
    }

    private static func check(_ path: String, settings: Settings) throws -> (container: MediaFileDecoder.Container, info: MediaFileDecoder.Info, thumbnail: [UInt8]) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw Failure.notFound }
        let head = [UInt8]((try? handle.read(upToCount: 16)) ?? Data())
        try? handle.close()
        guard let container = MediaFileDecoder.Container.sniff(head) else {
            throw Failure.invalid("send an MP4, MOV, WebM or Matroska file")
        }
        let decoder = try MediaFileDecoder(path: path, container: container, maxWidth: 320, maxHeight: 180)
        let info = decoder.info
        guard info.width > 0, info.height > 0, info.width <= settings.maxSide, info.height <= settings.maxSide else {
            throw Failure.invalid("its picture is \(info.width)×\(info.height); at most \(settings.maxSide)×\(settings.maxSide) is played")
        }
        guard info.durationSeconds <= settings.maxSeconds else {
            throw Failure.invalid("it lasts \(Int(info.durationSeconds)) s; a clip lasts at most \(Int(settings.maxSeconds)) s")
        }
        // The first picture, looked for within a bounded stretch of the file.
        for _ in 0..<2_000 {
            guard let output = try decoder.next() else { break }
            if case .picture(let picture, _) = output { return (container, info, try JPEGEncoder.encode(picture)) }
        }
        throw Failure.invalid("no picture of it could be decoded")
    }

    private func owned(_ id: UUID, owner: UUID) async throws -> Clip {
        guard let clip = try await Clip.find(id, on: store.db), clip.ownerID == owner else { throw Failure.notFound }
        return clip
    }

    private func removeFiles(of clip: Clip) {
        for name in [clip.fileName, clip.thumbnailName] where !name.isEmpty {
            try? FileManager.default.removeItem(at: settings.directory.appendingPathComponent(name))
        }
        if let id = clip.id { try? FileManager.default.removeItem(atPath: upload(id).path) }
    }

    /// Another node's upload must not be read as empty here.
    private func requireUploadHere(_ id: UUID) throws {
        guard upload(id).exists else { throw Failure.onAnotherNode }
    }

    private func upload(_ id: UUID) -> PiecewiseFile {
        PiecewiseFile(path: settings.directory.appendingPathComponent("\(id.uuidString.lowercased()).upload").path)
    }

    private func received(_ id: UUID) -> Int64 {
        upload(id).received
    }

    private func diskShort(adding bytes: Int64) -> Bool {
        var stats = statvfs()
        guard statvfs(settings.directory.deletingLastPathComponent().path, &stats) == 0 else { return false }
        return Int64(stats.f_bavail) * Int64(stats.f_frsize) - bytes < settings.minFreeBytes
    }
}
