import FluentKit
import Foundation
import Ingest
import Logging
import NetworkPolicy
import RTMP
import Store

/// The ingest hub as the server runs it: publishes are checked against the stream keys in
/// the store, and every status change is written back there.
public enum IngestStreams {
    /// How the server runs ingest: where HLS goes, how long a slate lasts, whom to ask on
    /// publish, where relays may go, and how many ladders transcode at once.
    public struct Settings: Sendable {
        public var hlsDirectory: URL
        public var slateTimeout: Duration
        public var onPublishURL: String?
        public var outbound: OutboundPolicy
        public var maxLadders: Int

        public init(hlsDirectory: URL, slateTimeout: Duration, onPublishURL: String?, outbound: OutboundPolicy, maxLadders: Int) {
            self.hlsDirectory = hlsDirectory
            self.slateTimeout = slateTimeout
            self.onPublishURL = onPublishURL
            self.outbound = outbound
            self.maxLadders = maxLadders
        }
    }

    /// `writes` saves status changes in the order they happen; drain it before closing the store.
    public static func hub(settings: Settings, store: Store, writes: SerialTasks, logger: Logger) -> IngestHub {
        IngestHub(
            hlsRoot: settings.hlsDirectory.appendingPathComponent("streams"), slateTimeout: settings.slateTimeout,
            webhook: settings.onPublishURL.flatMap { try? OnPublishWebhook(url: $0, policy: settings.outbound) },
            outbound: settings.outbound, maxLadders: settings.maxLadders, logger: logger,
            authorize: { request in await authorize(request, store: store, logger: logger) },
            onStatus: { snapshot in writes.enqueue { await persist(snapshot, store: store, logger: logger) } })
    }

    /// Streams left `running` by a process that stopped wait for their publishers again.
    public static func recover(store: Store, logger: Logger) async {
        do {
            try await IngestStreamRecord.query(on: store.db).filter(\.$status == IngestStatus.running.rawValue)
                .set(\.$status, to: IngestStatus.starting.rawValue).update()
        } catch {
            logger.error("ingest: cannot reset streams left running: \(String(reflecting: error))")
        }
    }

    /// The publish names a stream key the store knows, for a stream that is not stopped.
    private static func authorize(_ request: IngestRequest, store: Store, logger: Logger) async -> IngestDecision {
        guard request.app == "live" else { return .deny("publish to the application \"live\"") }
        let digest = store.sealer.lookupDigest(request.streamKey)
        let record: IngestStreamRecord?
        do {
            record = try await IngestStreamRecord.query(on: store.db).filter(\.$streamKeyDigest == digest).first()
        } catch {
            logger.error("ingest: cannot check a stream key: \(String(reflecting: error))")
            return .deny("the server cannot check stream keys right now")
        }
        guard let record else { return .deny("unknown stream key") }
        guard record.status != IngestStatus.stopped.rawValue, record.status != IngestStatus.error.rawValue else {
            return .deny("stream \(record.streamID) is \(record.status); start it with POST /api/streams")
        }
        let passphrase: String?
        do {
            passphrase = try record.srtPassphraseSealed.map { try store.sealer.open($0) }
        } catch {
            logger.error("ingest: cannot unseal the SRT passphrase of \(record.streamID): \(error)")
            return .deny("the server cannot read this stream's settings")
        }
        do {
            return .allow(streamID: record.streamID,
                          settings: try await settings(record, store: store, logger: logger, passphrase: request.transport == .srt ? passphrase : nil))
        } catch {
            logger.error("ingest: cannot read the relays of \(record.streamID): \(String(reflecting: error))")
            return .deny("the server cannot read this stream's settings")
        }
    }

    /// What the hub needs to know of a stream's stored settings, relays' keys unsealed.
    public static func settings(_ record: IngestStreamRecord, store: Store, logger: Logger, passphrase: String? = nil) async throws -> IngestSettings {
        let stored = try await IngestRelayRecord.query(on: store.db).filter(\.$ingestStreamID == (try record.requireID())).sort(\.$createdAt).all()
        var relays: [IngestRelay] = []
        for relay in stored {
            do {
                relays.append(IngestRelay(id: try relay.requireID().uuidString, endpoint: try RTMPEndpoint(url: relay.rtmpURL, streamKey: try store.sealer.open(relay.streamKeySealed))))
            } catch {
                logger.error("ingest: relay \(relay.loggedID) of \(record.streamID) is left out: \(error)")
            }
        }
        return IngestSettings(passphrase: passphrase, publicHLS: record.publicHLS, ladder: ladder(record), relays: relays)
    }

    /// A stream's one status: the hub's while it holds the stream (it writes each change
    /// back to the store, a moment later), else the stored one.
    public static func status(of record: IngestStreamRecord, snapshot: IngestStreamSnapshot?) -> IngestStatus {
        snapshot?.status ?? IngestStatus(rawValue: record.status) ?? .starting
    }

    public static func ladder(_ record: IngestStreamRecord) -> [Rendition] {
        (record.ladder ?? "").split(separator: ",").compactMap { Rendition.named(String($0)) }
    }

    private static func persist(_ snapshot: IngestStreamSnapshot, store: Store, logger: Logger) async {
        do {
            guard let record = try await IngestStreamRecord.query(on: store.db).filter(\.$streamID == snapshot.streamID).first() else { return }
            record.status = snapshot.status.rawValue
            record.lastError = snapshot.lastError
            record.startedAt = snapshot.startTime
            try await record.save(on: store.db)
        } catch {
            logger.error("ingest: cannot save the status of \(snapshot.streamID): \(String(reflecting: error))")
        }
    }
}
