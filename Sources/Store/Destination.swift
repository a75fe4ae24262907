import FluentKit
import Foundation

/// Where the program is pushed: a platform's RTMP(S) ingest URL and the host's stream key.
public final class Destination: Model, @unchecked Sendable {
    public static let schema = "destinations"

    @ID(key: .id) public var id: UUID?
    @Field(key: "broadcast_id") public var broadcastID: UUID
    @Field(key: "platform") public var platform: String
    @Field(key: "name") public var name: String
    @Field(key: "rtmp_url") public var rtmpURL: String
    /// AES-GCM sealed by `StreamKeySealer`; never the plaintext.
    @Field(key: "stream_key_sealed") public var streamKeySealed: String
    /// The redacted form (`••••abcd`), kept so listings never need to decrypt.
    @Field(key: "stream_key_hint") public var streamKeyHint: String
    @Field(key: "enabled") public var enabled: Bool
    @Field(key: "status") public var status: String
    @Timestamp(key: "created_at", on: .create) public var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) public var updatedAt: Date?

    public init() {}

    public init(broadcastID: UUID, platform: String, name: String, rtmpURL: String, streamKeySealed: String, streamKeyHint: String) {
        self.broadcastID = broadcastID
        self.platform = platform
        self.name = name
        self.rtmpURL = rtmpURL
        self.streamKeySealed = streamKeySealed
        self.streamKeyHint = streamKeyHint
        self.enabled = true
        self.status = "idle"
    }
}
