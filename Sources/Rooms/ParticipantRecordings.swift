import FluentKit
import Foundation
import Logging
import MediaCodecs
import Program
import SFU
import Store

/// Each participant's own recording of a show, beside the program's. A participant's page
/// records their camera and microphone as they are captured (MediaRecorder) and uploads it
/// while the show runs, in pieces that name their byte offset, so an upload cut off by a
/// dropped connection or a reload goes on from what the server has. Once the page says the
/// take is complete, the file is remuxed (no decoding) into a WebM with its duration and an
/// index, and probed for its size and length.
///
/// Beside each upload, the server keeps its own copy of every participant who publishes on
/// this node while the show is recorded (`server` tracks, one per stretch of publishing): what
/// it received, as it came, for a participant whose upload never finishes.
///
/// A take's bytes are kept on the node that started it (as each part of the program's
/// recording is).
public actor ParticipantRecordings {
    public struct Settings: Sendable {
        public var directory: URL
        /// A take stops growing at this size (the program recording's cap).
        public var maxBytes: Int64
        /// Below this much free disk, uploads are refused until space is made.
        public var minFreeBytes: Int64
        /// Takes one participant may start in one show (each reload of their page is one).
        public var maxTakes: Int

        public init(directory: URL, maxBytes: Int64, minFreeBytes: Int64, maxTakes: Int = 20) {
            self.directory = directory
            self.maxBytes = maxBytes
            self.minFreeBytes = minFreeBytes
            self.maxTakes = maxTakes
        }
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case notParticipant
        case notRecording
        case tooManyTakes(Int)
        case notFound
        case notHolder
        case finished
        case offsetMismatch(received: Int64)
        case tooLarge(Int64)
        case diskFull(String)
        case unreadable(String)
        /// The take's bytes are on the node that started it, not this one.
        case onAnotherNode

        public var description: String {
            switch self {
            case .notParticipant: "that participant is not you, or not in this broadcast"
            case .notRecording: "the broadcast is not being recorded now"
            case .tooManyTakes(let limit): "a participant may record at most \(limit) takes of one show"
            case .notFound: "no such participant recording"
            case .notHolder: "this participant recording was started by another credential"
            case .finished: "this participant recording is already complete"
            case .offsetMismatch(let received): "the server has \(received) bytes of this recording; send from there"
            case .tooLarge(let limit): "a participant recording may be at most \(limit >> 20) MB"
            case .diskFull(let reason): reason
            case .unreadable(let reason): "the recording cannot be read: \(reason)"
            case .onAnotherNode: "this recording is being uploaded to another server of this deployment; try again"
            }
        }
    }

    private let store: Store
    private let settings: Settings
    private let sfu: SFU?
    private let logger: Logger
    /// The server's copies being written on this node, by track id.
    private var copies: [UUID: ServerCopy] = [:]

    private struct ServerCopy {
        var key: CopyKey
        var recorder: TrackRecorder
    }

    private struct CopyKey: Hashable {
        var broadcastID: String
        var participantID: ParticipantID
    }

    /// `sfu`: where the server's copies are tapped from; nil keeps none.
    public init(store: Store, settings: Settings, sfu: SFU? = nil, logger: Logger) {
        self.store = store
        self.settings = settings
        self.sfu = sfu
        self.logger = logger
    }

    // MARK: The server's copies

    /// Keeps a copy being written of every participant publishing on this node in a
    /// broadcast being recorded, and completes those whose participant stopped publishing or
    /// whose show stopped recording. Run every second.
    public func keepServerCopies() async {
        guard let sfu else { return }
        var wanted: [CopyKey: Recording] = [:]
        for (broadcast, participants) in await sfu.participantsPublishingHere() {
            guard let id = UUID(uuidString: broadcast), let recording = try? await liveRecording(of: id) else { continue }
            for participant in participants { wanted[CopyKey(broadcastID: broadcast, participantID: participant)] = recording }
        }
        for (trackID, copy) in copies where wanted[copy.key] == nil { await finishCopy(trackID) }
        let running = Set(copies.values.map(\.key))
        for (key, recording) in wanted where !running.contains(key) { await startCopy(key, recording: recording, sfu: sfu) }
    }

    /// Completes every copy this node writes (the node is stopping).
    public func finishServerCopies() async {
        for trackID in Array(copies.keys) { await finishCopy(trackID) }
    }

    private func liveRecording(of broadcastID: UUID) async throws -> Recording? {
        try await Recording.query(on: store.db).filter(\.$broadcastID == broadcastID).filter(\.$status == "recording").sort(\.$part, .descending).first()
    }

    private func startCopy(_ key: CopyKey, recording: Recording, sfu: SFU) async {
        guard let recordingID = recording.id, let participantID = UUID(uuidString: key.participantID.rawValue), diskShortage() == nil else { return }
        do {
            let name = try await Participant.find(participantID, on: store.db)?.name ?? "Publisher"
            let takes = try await ParticipantTrack.query(on: store.db).filter(\.$recordingID == recordingID)
                .filter(\.$participantID == participantID).filter(\.$source == "server").count()
            let id = UUID()
            let track = ParticipantTrack(recordingID: recordingID, participantID: participantID, name: name, source: "server", take: takes + 1,
                                         status: "recording", fileName: "participants/\(id.uuidString.lowercased()).mkv", holder: "server")
            track.id = id
            try FileManager.default.createDirectory(at: settings.directory.appendingPathComponent("participants"), withIntermediateDirectories: true)
            try await track.create(on: store.db)
            let recorder = TrackRecorder(path: file(of: track).path, broadcastID: key.broadcastID, participantID: key.participantID, sfu: sfu, logger: logger)
            copies[id] = ServerCopy(key: key, recorder: recorder)
            await recorder.start()
            logger.info("participant copy started", metadata: ["recording": "\(recordingID)", "participant": "\(participantID)", "take": "\(track.take)"])
        } catch {
            logger.error("participant copy not started", metadata: ["participant": "\(participantID)", "error": "\(error)"])
        }
    }

    private func finishCopy(_ trackID: UUID) async {
        guard let copy = copies.removeValue(forKey: trackID) else { return }
        let summary = await copy.recorder.stop()
        guard let track = try? await ParticipantTrack.find(trackID, on: store.db) else { return }
        track.width = summary.width
        track.height = summary.height
        track.durationSeconds = summary.durationSeconds
        track.sizeBytes = summary.bytes
        if summary.width > 0, summary.bytes > 0 {
            track.status = "ready"
        } else {
            track.status = "failed"
            track.error = "no picture arrived from this participant"
        }
        try? await track.save(on: store.db)
        logger.info("participant copy complete", metadata: ["track": "\(trackID)", "status": "\(track.status)", "seconds": "\(summary.durationSeconds)"])
    }

    // MARK: Uploads from the participant's page

    /// Starts a new take of the participant's local recording in the broadcast's current
    /// recording. `holder` is the caller's credential key; only it may add to the take.
    public func startLocal(broadcastID: UUID, participant: Participant, holder: String) async throws -> ParticipantTrack {
        guard participant.broadcastID == broadcastID, let participantID = participant.id else { throw Failure.notParticipant }
        guard let recording = try await Recording.query(on: store.db).filter(\.$broadcastID == broadcastID).filter(\.$status == "recording")
            .sort(\.$part, .descending).first(), let recordingID = recording.id else { throw Failure.notRecording }
        if let shortage = diskShortage() { throw Failure.diskFull(shortage) }
        let takes = try await ParticipantTrack.query(on: store.db).filter(\.$recordingID == recordingID)
            .filter(\.$participantID == participantID).filter(\.$source == "local").count()
        guard takes < settings.maxTakes else { throw Failure.tooManyTakes(settings.maxTakes) }
        let id = UUID()
        let track = ParticipantTrack(recordingID: recordingID, participantID: participantID, name: participant.name, source: "local",
                                     take: takes + 1, status: "uploading", fileName: "participants/\(id.uuidString.lowercased()).webm", holder: holder)
        track.id = id
        try FileManager.default.createDirectory(at: settings.directory.appendingPathComponent("participants"), withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: uploadPath(track), contents: nil) else { throw Failure.diskFull("the recording cannot be stored") }
        try await track.create(on: store.db)
        logger.info("participant recording started", metadata: ["recording": "\(recordingID)", "participant": "\(participantID)", "take": "\(track.take)"])
        return track
    }

    /// The take, for its holder.
    public func track(_ id: UUID, holder: String) async throws -> (track: ParticipantTrack, receivedBytes: Int64) {
        let track = try await held(id, holder: holder)
        guard track.status == "uploading" else { return (track, track.sizeBytes) }
        try requireUploadHere(track)
        return (track, received(track))
    }

    /// Adds `bytes` at `offset`. A piece the server already has (its answer was lost) is
    /// taken as sent; a gap is refused with what the server has, to resend from there.
    /// Returns the bytes received.
    public func append(_ id: UUID, holder: String, offset: Int64, bytes: [UInt8]) async throws -> Int64 {
        let track = try await held(id, holder: holder)
        guard track.status == "uploading" else { throw Failure.finished }
        try requireUploadHere(track)
        let outcome = try PiecewiseFile(path: uploadPath(track)).append(bytes, at: offset, limit: settings.maxBytes) {
            if let shortage = diskShortage() { throw Failure.diskFull(shortage) }
        }
        switch outcome {
        case .received(let bytes): return bytes
        case .gap(let received): throw Failure.offsetMismatch(received: received)
        case .overLimit: throw Failure.tooLarge(settings.maxBytes)
        }
    }

    /// The page has sent everything: remux the upload into a seekable WebM and probe it.
    public func complete(_ id: UUID, holder: String) async throws -> ParticipantTrack {
        let track = try await held(id, holder: holder)
        guard track.status == "uploading" else { return track }
        try requireUploadHere(track)
        let upload = uploadPath(track)
        let output = settings.directory.appendingPathComponent(track.fileName).path
        let received = self.received(track)
        do {
            let summary = try MediaFileRemux.remux(input: upload, output: output)
            track.width = summary.width
            track.height = summary.height
            track.durationSeconds = summary.durationSeconds
            track.sizeBytes = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int64) ?? received
            track.status = "ready"
            try? FileManager.default.removeItem(atPath: upload)
        } catch {
            // What came is kept as it came, for the host to try elsewhere.
            try? FileManager.default.removeItem(atPath: output)
            try? FileManager.default.moveItem(atPath: upload, toPath: output)
            track.sizeBytes = received
            track.status = "failed"
            track.error = "the upload is not a playable recording: \(error)"
        }
        try await track.save(on: store.db)
        logger.info("participant recording complete", metadata: ["track": "\(id)", "status": "\(track.status)", "bytes": "\(track.sizeBytes)",
                                                                  "seconds": "\(track.durationSeconds)"])
        return track
    }

    /// The tracks of one program recording, in order of participant and take; a take still
    /// uploading counts the bytes received so far.
    public func tracks(recordingID: UUID) async throws -> [ParticipantTrack] {
        let tracks = try await ParticipantTrack.query(on: store.db).filter(\.$recordingID == recordingID).sort(\.$name).sort(\.$source).sort(\.$take).all()
        for track in tracks where track.status == "uploading" { track.sizeBytes = received(track) }
        return tracks
    }

    /// Deletes the files of every track of a recording (before the recording's row goes,
    /// taking the tracks' rows with it).
    public func removeFiles(recordingID: UUID) async throws {
        for track in try await ParticipantTrack.query(on: store.db).filter(\.$recordingID == recordingID).all() {
            try? FileManager.default.removeItem(at: file(of: track))
            try? FileManager.default.removeItem(atPath: uploadPath(track))
        }
    }

    /// Where a track's finished file is.
    public func file(of track: ParticipantTrack) -> URL {
        settings.directory.appendingPathComponent(track.fileName)
    }

    private func held(_ id: UUID, holder: String) async throws -> ParticipantTrack {
        guard let track = try await ParticipantTrack.find(id, on: store.db) else { throw Failure.notFound }
        guard track.holder == holder else { throw Failure.notHolder }
        return track
    }

    /// Another node's take must not be read as empty here: that would throw its bytes away.
    private func requireUploadHere(_ track: ParticipantTrack) throws {
        guard PiecewiseFile(path: uploadPath(track)).exists else { throw Failure.onAnotherNode }
    }

    private func uploadPath(_ track: ParticipantTrack) -> String {
        settings.directory.appendingPathComponent(track.fileName + ".upload").path
    }

    private func received(_ track: ParticipantTrack) -> Int64 {
        PiecewiseFile(path: uploadPath(track)).received
    }

    private func diskShortage() -> String? {
        var stats = statvfs()
        guard statvfs(settings.directory.path, &stats) == 0 else { return nil }
        let free = Int64(stats.f_bavail) * Int64(stats.f_frsize)
        guard free < settings.minFreeBytes else { return nil }
        return "the server's disk is nearly full; recordings are paused"
    }
}
