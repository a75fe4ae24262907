/// The server's side of a publishing RTMP connection as a state machine fed with bytes (no
/// sockets): handshake, connect to an allowed application, createStream, publish with a
/// stream key, then media. The caller decides whether a publish may go ahead
/// (`acceptPublish` / `rejectPublish`); until it does, media is dropped, never buffered.
public struct RTMPServerSession: Sendable {
    public enum Phase: Sendable, Equatable {
        case handshaking
        /// S0–S2 sent; waiting for C2.
        case awaitingC2
        case connecting
        case connected
        /// `publish` arrived; waiting for `acceptPublish` or `rejectPublish`.
        case authorizing
        case live
        case closed
    }

    public enum Event: Sendable, Equatable {
        /// Bytes to write to the client.
        case send([UInt8])
        /// The client wants to publish `streamKey` (without any `?query`) to `app`.
        case publish(app: String, streamKey: String, query: String)
        /// An FLV tag body from the live stream; `timestamp` in milliseconds.
        case media(FLVTagKind, timestamp: UInt32, body: [UInt8])
        /// `onMetaData` as the encoder described its stream.
        case metadata([String: AMF0Value])
        /// The client ended the stream (FCUnpublish, deleteStream or closeStream).
        case unpublished
        /// The session is over; close the connection after writing what was sent.
        case close(reason: String)
    }

    public private(set) var phase = Phase.handshaking
    public private(set) var app = ""
    public private(set) var streamKey = ""
    /// Media messages that arrived before the publish was accepted, dropped unread.
    public private(set) var droppedBeforeLive = 0
    public let allowedApps: Set<String>
    /// How many bytes chunks may hold in flight across all chunk streams.
    public let maxBuffered: Int
    private var handshakeBytes: [UInt8] = []
    private var reader: RTMPChunkReader
    private var writer = RTMPChunkWriter()
    private var flow = RTMPFlowControl()
    private var nextStreamID: UInt32 = 1
    private var publishStreamID: UInt32 = 0
    private let outgoingChunkSize = 4096

    public init(allowedApps: Set<String> = ["live"], maxMessageSize: Int = 4 << 20, maxBuffered: Int = 16 << 20) {
        self.allowedApps = allowedApps
        self.maxBuffered = maxBuffered
        reader = RTMPChunkReader(maxMessageSize: maxMessageSize, maxChunkStreams: 16)
    }

    public mutating func receive(_ bytes: [UInt8]) throws(RTMPError) -> [Event] {
        guard phase != .closed else { return [] }
        flow.count(bytes.count)
        var events: [Event] = []
        var input = bytes
        if phase == .handshaking || phase == .awaitingC2 {
            handshakeBytes += input
            input = []
            if phase == .handshaking {
                guard let reply = try RTMPHandshake.serverReply(to: handshakeBytes) else { return [] }
                handshakeBytes.removeFirst(1 + RTMPHandshake.packetSize)
                events.append(.send(reply))
                phase = .awaitingC2
            }
            // C2 echoes S1; nothing in it changes what either side does next.
            guard handshakeBytes.count >= RTMPHandshake.packetSize else { return events }
            input = Array(handshakeBytes.dropFirst(RTMPHandshake.packetSize))
            handshakeBytes = []
            phase = .connecting
        }
        for message in try reader.read(input) {
            events += try handle(message)
            if phase == .closed { return events }
        }
        guard reader.buffered <= maxBuffered else { throw .badChunk("more than \(maxBuffered) bytes of unfinished messages") }
        if let acknowledgement = flow.acknowledgement(writer: writer) { events.append(.send(acknowledgement)) }
        return events
    }

    /// Lets the publish go ahead: the client hears NetStream.Publish.Start and media flows.
    public mutating func acceptPublish() -> [UInt8] {
        guard phase == .authorizing else { return [] }
        phase = .live
        var out: [UInt8] = []
        writer.write(.userControl(event: 0, value: publishStreamID), into: &out)
        writer.write(status("status", "NetStream.Publish.Start", "\(streamKey) is now published"), chunkStream: 5, into: &out)
        return out
    }

    /// Refuses the publish with a status the encoder shows to its user; the session is over.
    public mutating func rejectPublish(code: String = "NetStream.Publish.BadName", description: String) -> [UInt8] {
        guard phase != .closed else { return [] }
        var out: [UInt8] = []
        writer.write(status("error", code, description), chunkStream: 5, into: &out)
        phase = .closed
        return out
    }

    private func status(_ level: String, _ code: String, _ description: String) -> RTMPMessage {
        .command([.string("onStatus"), .number(0), .null,
                  .object([("level", .string(level)), ("code", .string(code)), ("description", .string(description))])],
                 streamID: publishStreamID)
    }

    private mutating func handle(_ message: RTMPMessage) throws(RTMPError) -> [Event] {
        var reply: [UInt8] = []
        if flow.handle(message, writer: writer, into: &reply) { return reply.isEmpty ? [] : [.send(reply)] }
        switch message.typeID {
        case RTMPMessage.Kind.commandAMF0, RTMPMessage.Kind.commandAMF3:
            // An AMF3 command message starts with one format byte, then AMF0 values.
            let body = message.typeID == RTMPMessage.Kind.commandAMF3 ? message.payload.dropFirst() : message.payload[...]
            let values: [AMF0Value]
            do {
                values = try AMF0.decode(body)
            } catch {
                throw .protocolViolation("unreadable command: \(error)")
            }
            return try command(values, streamID: message.streamID)
        case RTMPMessage.Kind.audio, RTMPMessage.Kind.video:
            guard phase == .live else {
                droppedBeforeLive += 1
                return []
            }
            guard !message.payload.isEmpty else { return [] }
            return [.media(message.typeID == RTMPMessage.Kind.audio ? .audio : .video, timestamp: message.timestamp, body: message.payload)]
        case RTMPMessage.Kind.dataAMF0, RTMPMessage.Kind.dataAMF3:
            guard phase == .live else { return [] }
            let body = message.typeID == RTMPMessage.Kind.dataAMF3 ? message.payload.dropFirst() : message.payload[...]
            guard let values = try? AMF0.decode(body) else { return [] }
            let named = values.drop { $0.string == "@setDataFrame" }
            guard named.first?.string == "onMetaData", named.count > 1 else { return [] }
            return [.metadata(Self.properties(named[named.startIndex + 1]))]
        case RTMPMessage.Kind.aggregate:
            guard phase == .live else {
                droppedBeforeLive += 1
                return []
            }
            return try Self.splitAggregate(message)
        default:
            return []
        }
    }

    static func properties(_ value: AMF0Value) -> [String: AMF0Value] {
        switch value {
        case .object(let pairs), .ecmaArray(let pairs): Dictionary(pairs, uniquingKeysWith: { _, last in last })
        default: [:]
        }
    }

    /// An aggregate message (§7.1.6) is FLV tags back to back; their timestamps are relative
    /// to the first one, which lines up with the message's own.
    static func splitAggregate(_ message: RTMPMessage) throws(RTMPError) -> [Event] {
        var events: [Event] = []
        let bytes = message.payload
        var index = 0
        var firstStamp: UInt32?
        while index < bytes.count {
            guard index + 11 <= bytes.count else { throw .protocolViolation("aggregate message cut inside a tag header") }
            let type = bytes[index]
            let size = Int(bytes[index + 1]) << 16 | Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
            let stamp = UInt32(bytes[index + 7]) << 24 | UInt32(bytes[index + 4]) << 16 | UInt32(bytes[index + 5]) << 8 | UInt32(bytes[index + 6])
            let start = index + 11
            guard size <= bytes.count - start else { throw .protocolViolation("aggregate tag of \(size) bytes runs past its message") }
            let first = firstStamp ?? stamp
            firstStamp = first
            let timestamp = message.timestamp &+ (stamp &- first)
            if size > 0, type == RTMPMessage.Kind.audio || type == RTMPMessage.Kind.video {
                events.append(.media(type == RTMPMessage.Kind.audio ? .audio : .video, timestamp: timestamp, body: Array(bytes[start..<start + size])))
            }
            // Each tag is followed by its 4-byte back pointer.
            index = start + size + 4
        }
        return events
    }

    private mutating func command(_ values: [AMF0Value], streamID: UInt32) throws(RTMPError) -> [Event] {
        guard let name = values.first?.string else { return [] }
        let transaction = values.count > 1 ? values[1].number ?? 0 : 0
        switch name {
        case "connect":
            guard phase == .connecting else { throw .protocolViolation("connect sent twice") }
            let properties = values.count > 2 ? Self.properties(values[2]) : [:]
            let requested = properties["app"]?.string ?? ""
            app = Self.normalizedApp(requested)
            var out: [UInt8] = []
            guard allowedApps.contains(app) else {
                writer.write(.command([.string("_error"), .number(transaction), .null,
                                       .object([("level", .string("error")), ("code", .string("NetConnection.Connect.Rejected")),
                                                ("description", .string("no application \"\(requested)\" here; publish to rtmp://HOST/\(allowedApps.sorted().first ?? "live")"))])]),
                             into: &out)
                phase = .closed
                return [.send(out), .close(reason: "connect to unknown application \"\(requested)\"")]
            }
            writer.write(.windowAcknowledgementSize(2_500_000), into: &out)
            writer.write(.setPeerBandwidth(2_500_000), into: &out)
            writer.write(.setChunkSize(UInt32(outgoingChunkSize)), into: &out)
            writer.setChunkSize(outgoingChunkSize)
            writer.write(.command([
                .string("_result"), .number(transaction),
                .object([("fmsVer", .string("FMS/3,5,7,7009")), ("capabilities", .number(31))]),
                .object([("level", .string("status")), ("code", .string("NetConnection.Connect.Success")),
                         ("description", .string("Connection succeeded.")), ("objectEncoding", .number(0))]),
            ]), into: &out)
            phase = .connected
            return [.send(out)]
        case "releaseStream", "FCPublish", "createStream", "publish":
            guard phase == .connected else {
                if phase == .connecting { throw .protocolViolation("\(name) before connect") }
                return []
            }
            var out: [UInt8] = []
            switch name {
            case "createStream":
                writer.write(.command([.string("_result"), .number(transaction), .null, .number(Double(nextStreamID))]), into: &out)
                nextStreamID += 1
            case "publish":
                guard values.count > 3, let name = values[3].string, !name.isEmpty else {
                    return [.send(rejectPublish(description: "publish names no stream key")), .close(reason: "publish without a stream key")]
                }
                let parts = name.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
                streamKey = String(parts[0])
                publishStreamID = streamID
                phase = .authorizing
                return [.publish(app: app, streamKey: streamKey, query: parts.count > 1 ? String(parts[1]) : "")]
            case "FCPublish":
                let key = values.count > 3 ? values[3].string ?? "" : ""
                writer.write(.command([.string("onFCPublish"), .number(0), .null,
                                       .object([("code", .string("NetStream.Publish.Start")), ("description", .string(key))])]), into: &out)
            default:
                writer.write(.command([.string("_result"), .number(transaction), .null, .undefined]), into: &out)
            }
            return [.send(out)]
        case "FCUnpublish", "deleteStream", "closeStream":
            guard phase == .live else { return [] }
            phase = .connected
            var out: [UInt8] = []
            writer.write(status("status", "NetStream.Unpublish.Success", "\(streamKey) is now unpublished"), chunkStream: 5, into: &out)
            return [.send(out), .unpublished]
        default:
            return []
        }
    }

    /// `live`, `live/`, `live?token=…` all name the application `live`.
    static func normalizedApp(_ app: String) -> String {
        var name = Substring(app.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        while name.hasSuffix("/") { name = name.dropLast() }
        return String(name)
    }
}
