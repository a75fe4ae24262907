import FluentKit
import Foundation
import HTTPAPI
import Hummingbird
import Store
import TallyNode
import Testing

@Suite("Recordings: list, get, delete")
struct RecordingTests {
    /// Recordings are made by the outputs; here the test files one the way they will.
    static func record(_ services: TallyNode, owner: String, title: String, status: String = "ready") async throws -> Recording {
        let fileName = "\(UUID().uuidString).mp4"
        let recording = Recording(broadcastID: nil, ownerID: UUID(uuidString: owner)!, title: title, fileName: fileName)
        recording.status = status
        recording.durationSeconds = 12.5
        recording.sizeBytes = 4
        try await recording.create(on: services.store.db)
        try Data([0, 0, 0, 1]).write(to: services.configuration.recordingsDirectory.appendingPathComponent(fileName))
        return recording
    }

    @Test("owners list, read and delete their recordings; the file goes with the row")
    func ownRecordings() async throws {
        try await withServer { api, services in
            let host = try await api.signUp()
            let stranger = try await api.signUp()
            let kept = try await Self.record(services, owner: host.userID, title: "Episode 1")
            let gone = try await Self.record(services, owner: host.userID, title: "Episode 2")
            _ = try await Self.record(services, owner: stranger.userID, title: "Not yours")

            let list = try await api.call(.get, "/api/recordings", token: host.accessToken)
            let titles = (list["recordings"] as? [[String: Any]])?.compactMap { $0["title"] as? String }.sorted()
            #expect(titles == ["Episode 1", "Episode 2"])
            let one = try await api.call(.get, "/api/recordings/\(kept.id!)", token: host.accessToken)
            #expect(one["duration_seconds"] as? Double == 12.5)
            #expect(one["size_bytes"] as? Int == 4)
            #expect(try await api.call(.get, "/api/recordings/\(kept.id!)", token: stranger.accessToken).status == .forbidden)
            #expect(try await api.call(.delete, "/api/recordings/\(gone.id!)", token: stranger.accessToken).status == .forbidden)

            #expect(try await api.call(.delete, "/api/recordings/\(gone.id!)", token: host.accessToken).status == .noContent)
            let file = services.configuration.recordingsDirectory.appendingPathComponent(gone.fileName)
            #expect(!FileManager.default.fileExists(atPath: file.path))
            #expect(try await api.call(.get, "/api/recordings/\(gone.id!)", token: host.accessToken).errorCode == "recording_not_found")
        }
    }

    @Test("a recording still being written cannot be deleted")
    func inProgress() async throws {
        try await withServer { api, services in
            let host = try await api.signUp()
            let live = try await Self.record(services, owner: host.userID, title: "Live", status: "recording")
            let reply = try await api.call(.delete, "/api/recordings/\(live.id!)", token: host.accessToken)
            #expect(reply.status == .conflict && reply.errorCode == "recording_in_progress")
        }
    }
}
