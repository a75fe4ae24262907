import FluentKit
import Foundation

/// Someone in a broadcast's studio: the host, an invited guest, or a viewer.
public final class Participant: Model, @unchecked Sendable {
    public static let schema = "participants"

    @ID(key: .id) public var id: UUID?
    @Field(key: "broadcast_id") public var broadcastID: UUID
    @OptionalField(key: "user_id") public var userID: UUID?
    /// The invite a guest came in with; nil for hosts.
    @OptionalField(key: "invite_id") public var inviteID: String?
    @Field(key: "name") public var name: String
    @Field(key: "role") public var role: String
    @Field(key: "audio_enabled") public var audioEnabled: Bool
    @Field(key: "video_enabled") public var videoEnabled: Bool
    @Timestamp(key: "created_at", on: .create) public var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) public var updatedAt: Date?

    public init() {}

    public init(broadcastID: UUID, userID: UUID?, name: String, role: ParticipantRole, inviteID: String? = nil) {
        self.broadcastID = broadcastID
        self.userID = userID
        self.inviteID = inviteID
        self.name = name
        self.role = role.rawValue
        self.audioEnabled = true
        self.videoEnabled = true
    }
}

public enum ParticipantRole: String, Codable, Sendable, CaseIterable {
    case host
    case guest
    case viewer
}
