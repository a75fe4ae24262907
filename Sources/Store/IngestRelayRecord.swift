import FluentKit
import Foundation

/// An RTMP(S) destination an ingest stream is restreamed to as it comes, without
/// transcoding: the owner's YouTube or Twitch ingest URL and key.
public final class IngestRelayRecord: Model, @unchecked Sendable {
    public static let schema = "ingest_relays"

    @ID(key: .id) public var id: UUID?
    /// The `IngestStreamRecord` (its row ID, not its `stream_id`).
    @Field(key: "ingest_stream_id") public var ingestStreamID: UUID
    @Field(key: "platform") public var platform: String
    @Field(key: "name") public var name: String
    @Field(key: "rtmp_url") public var rtmpURL: String
    /// AES-GCM sealed by `StreamKeySealer`; never the plaintext.
    @Field(key: "stream_key_sealed") public var streamKeySealed: String
    @Field(key: "stream_key_hint") public var streamKeyHint: String
    @Timestamp(key: "created_at", on: .create) public var createdAt: Date?

    public init() {}

    public init(ingestStreamID: UUID, platform: String, name: String, rtmpURL: String, streamKeySealed: String, streamKeyHint: String) {
        self.ingestStreamID = ingestStreamID
        self.platform = platform
        self.name = name
        self.rtmpURL = rtmpURL
        self.streamKeySealed = streamKeySealed
        self.streamKeyHint = streamKeyHint
    }
}
