import FluentKit
import Foundation

/// An ingest stream (the stream API's `stream_id`): an encoder publishes to it with its
/// stream key over RTMP, SRT or WHIP, and viewers watch it as HLS.
public final class IngestStreamRecord: Model, @unchecked Sendable {
    public static let schema = "ingest_streams"

    @ID(key: .id) public var id: UUID?
    /// Chosen by the owner, unique across the server: it names the HLS path.
    @Field(key: "stream_id") public var streamID: String
    @Field(key: "owner_id") public var ownerID: UUID
    /// AES-GCM sealed by `StreamKeySealer`.
    @Field(key: "stream_key_sealed") public var streamKeySealed: String
    /// HMAC of the key (`StreamKeySealer.lookupDigest`): how a publish finds its stream
    /// without the database ever holding the key in the clear.
    @Field(key: "stream_key_digest") public var streamKeyDigest: String
    @Field(key: "stream_key_hint") public var streamKeyHint: String
    /// starting, running, stopped or error.
    @Field(key: "status") public var status: String
    /// Whether HLS plays without a signed URL.
    @Field(key: "public_hls") public var publicHLS: Bool
    /// SRT encryption passphrase, sealed like the key; nil: SRT without encryption.
    @OptionalField(key: "srt_passphrase_sealed") public var srtPassphraseSealed: String?
    /// Rendition names (`720p30,360p30`) transcoded besides the source; nil: passthrough only.
    @OptionalField(key: "ladder") public var ladder: String?
    @OptionalField(key: "last_error") public var lastError: String?
    @OptionalField(key: "started_at") public var startedAt: Date?
    @Timestamp(key: "created_at", on: .create) public var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) public var updatedAt: Date?

    public init() {}

    public init(streamID: String, ownerID: UUID, streamKeySealed: String, streamKeyDigest: String, streamKeyHint: String, publicHLS: Bool) {
        self.streamID = streamID
        self.ownerID = ownerID
        self.streamKeySealed = streamKeySealed
        self.streamKeyDigest = streamKeyDigest
        self.streamKeyHint = streamKeyHint
        self.status = "starting"
        self.publicHLS = publicHLS
    }
}
