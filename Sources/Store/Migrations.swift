import FluentKit

/// Every schema change, oldest first. Applied in one batch on start; never edit a shipped one.
enum TallyMigrations {
    static let all: [any Migration] = [
        CreateUsers(), CreateBroadcasts(), CreateDestinations(), CreateParticipants(), CreateRecordings(), CreateUploads(),
        AddBroadcastStage(), CreateIngestStreams(), AddIngestStreamSRTPassphrase(), AddIngestStreamLadder(),
        CreateIngestRelays(), AddParticipantInvite(), AddRecordingError(), CreateBroadcastHomes(), AddRecordingPart(),
        CreateParticipantTracks(), CreateClips(), CreateScenes(),
        AddSceneCountdown(), AddUserTheme(),
    ]
}

/// A migration that creates one table; reverting it drops that table.
protocol TableCreation: AsyncMigration {
    associatedtype Table: Model
}

extension TableCreation {
    func revert(on database: any Database) async throws {
        try await database.schema(Table.schema).delete()
    }
}

struct CreateUsers: TableCreation {
    typealias Table = User

    func prepare(on database: any Database) async throws {
        try await database.schema(Table.schema)
            .id()
            .field("email", .string, .required)
            .field("password_hash", .string, .required)
            .field("name", .string, .required)
            .field("avatar_url", .string)
            .field("subscription_tier", .string, .required)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .unique(on: "email")
            .create()
    }
}

struct CreateBroadcasts: TableCreation {
    typealias Table = Broadcast

    func prepare(on database: any Database) async throws {
        try await database.schema(Table.schema)
            .id()
            .field("owner_id", .uuid, .required, .references(User.schema, "id", onDelete: .cascade))
            .field("title", .string, .required)
            .field("description", .string, .required)
            .field("status", .string, .required)
            .field("settings", .json, .required)
            .field("scheduled_at", .datetime)
            .field("started_at", .datetime)
            .field("ended_at", .datetime)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .create()
    }
}

struct CreateDestinations: TableCreation {
    typealias Table = Destination

    func prepare(on database: any Database) async throws {
        try await database.schema(Table.schema)
            .id()
            .field("broadcast_id", .uuid, .required, .references(Broadcast.schema, "id", onDelete: .cascade))
            .field("platform", .string, .required)
            .field("name", .string, .required)
            .field("rtmp_url", .string, .required)
            .field("stream_key_sealed", .string, .required)
            .field("stream_key_hint", .string, .required)
            .field("enabled", .bool, .required)
            .field("status", .string, .required)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .create()
    }
}

struct CreateParticipants: TableCreation {
    typealias Table = Participant

    func prepare(on database: any Database) async throws {
        try await database.schema(Table.schema)
            .id()
            .field("broadcast_id", .uuid, .required, .references(Broadcast.schema, "id", onDelete: .cascade))
            .field("user_id", .uuid, .references(User.schema, "id", onDelete: .setNull))
            .field("name", .string, .required)
            .field("role", .string, .required)
            .field("audio_enabled", .bool, .required)
            .field("video_enabled", .bool, .required)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .create()
    }
}

struct CreateRecordings: TableCreation {
    typealias Table = Recording

    func prepare(on database: any Database) async throws {
        try await database.schema(Table.schema)
            .id()
            .field("broadcast_id", .uuid, .references(Broadcast.schema, "id", onDelete: .setNull))
            .field("owner_id", .uuid, .required, .references(User.schema, "id", onDelete: .cascade))
            .field("title", .string, .required)
            .field("file_name", .string, .required)
            .field("duration_seconds", .double, .required)
            .field("size_bytes", .int64, .required)
            .field("status", .string, .required)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .create()
    }
}

struct CreateUploads: TableCreation {
    typealias Table = Upload

    func prepare(on database: any Database) async throws {
        try await database.schema(Table.schema)
            .id()
            .field("owner_id", .uuid, .required, .references(User.schema, "id", onDelete: .cascade))
            .field("original_name", .string, .required)
            .field("content_type", .string, .required)
            .field("size_bytes", .int64, .required)
            .field("file_name", .string, .required)
            .field("created_at", .datetime)
            .create()
    }
}

struct AddBroadcastStage: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(Broadcast.schema).field("stage", .json).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Broadcast.schema).deleteField("stage").update()
    }
}

struct CreateIngestStreams: TableCreation {
    typealias Table = IngestStreamRecord

    func prepare(on database: any Database) async throws {
        try await database.schema(Table.schema)
            .id()
            .field("stream_id", .string, .required)
            .field("owner_id", .uuid, .required, .references(User.schema, "id", onDelete: .cascade))
            .field("stream_key_sealed", .string, .required)
            .field("stream_key_digest", .string, .required)
            .field("stream_key_hint", .string, .required)
            .field("status", .string, .required)
            .field("public_hls", .bool, .required)
            .field("last_error", .string)
            .field("started_at", .datetime)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .unique(on: "stream_id")
            .unique(on: "stream_key_digest")
            .create()
    }
}

struct AddIngestStreamSRTPassphrase: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(IngestStreamRecord.schema).field("srt_passphrase_sealed", .string).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(IngestStreamRecord.schema).deleteField("srt_passphrase_sealed").update()
    }
}

struct AddIngestStreamLadder: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(IngestStreamRecord.schema).field("ladder", .string).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(IngestStreamRecord.schema).deleteField("ladder").update()
    }
}

struct CreateIngestRelays: TableCreation {
    typealias Table = IngestRelayRecord

    func prepare(on database: any Database) async throws {
        try await database.schema(Table.schema)
            .id()
            .field("ingest_stream_id", .uuid, .required, .references(IngestStreamRecord.schema, "id", onDelete: .cascade))
            .field("platform", .string, .required)
            .field("name", .string, .required)
            .field("rtmp_url", .string, .required)
            .field("stream_key_sealed", .string, .required)
            .field("stream_key_hint", .string, .required)
            .field("created_at", .datetime)
            .create()
    }
}

/// Which invite admitted a guest: the invite's participants are counted and reused by it.
struct AddParticipantInvite: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(Participant.schema).field("invite_id", .string).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Participant.schema).deleteField("invite_id").update()
    }
}

/// Why a recording failed, for its owner.
struct AddRecordingError: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(Recording.schema).field("error", .string).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Recording.schema).deleteField("error").update()
    }
}

/// A recording continued on another node after its first home failed: one row per part.
struct AddRecordingPart: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(Recording.schema).field("part", .int, .required, .sql(.default(1))).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Recording.schema).deleteField("part").update()
    }
}

struct CreateParticipantTracks: TableCreation {
    typealias Table = ParticipantTrack

    func prepare(on database: any Database) async throws {
        try await database.schema(Table.schema)
            .id()
            .field("recording_id", .uuid, .required, .references(Recording.schema, "id", onDelete: .cascade))
            .field("participant_id", .uuid, .required)
            .field("name", .string, .required)
            .field("source", .string, .required)
            .field("take", .int, .required)
            .field("status", .string, .required)
            .field("error", .string)
            .field("file_name", .string, .required)
            .field("size_bytes", .int64, .required)
            .field("width", .int, .required)
            .field("height", .int, .required)
            .field("duration_seconds", .double, .required)
            .field("holder", .string, .required)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .create()
    }
}

struct CreateClips: TableCreation {
    typealias Table = Clip

    func prepare(on database: any Database) async throws {
        try await database.schema(Table.schema)
            .id()
            .field("owner_id", .uuid, .required, .references(User.schema, "id", onDelete: .cascade))
            .field("name", .string, .required)
            .field("status", .string, .required)
            .field("container", .string, .required)
            .field("content_type", .string, .required)
            .field("file_name", .string, .required)
            .field("thumbnail_name", .string, .required)
            .field("size_bytes", .int64, .required)
            .field("width", .int, .required)
            .field("height", .int, .required)
            .field("duration_seconds", .double, .required)
            .field("has_audio", .bool, .required)
            .field("loop", .bool, .required)
            .field("created_at", .datetime)
            .create()
    }
}

struct CreateScenes: TableCreation {
    typealias Table = StageScene

    func prepare(on database: any Database) async throws {
        try await database.schema(Table.schema)
            .id()
            .field("broadcast_id", .uuid, .required, .references(Broadcast.schema, "id", onDelete: .cascade))
            .field("name", .string, .required)
            .field("stage", .json, .required)
            .field("created_at", .datetime)
            .create()
    }
}

struct AddSceneCountdown: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(StageScene.schema).field("countdown_seconds", .int).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(StageScene.schema).deleteField("countdown_seconds").update()
    }
}

struct AddUserTheme: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(User.schema).field("theme", .json).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(User.schema).deleteField("theme").update()
    }
}
