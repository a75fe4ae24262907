/// Where to push: `rtmp://host[:port]/app[/more]` plus a stream key, as every platform
/// gives them.
public struct RTMPEndpoint: Sendable, Equatable {
    public var secure: Bool
    public var host: String
    public var port: Int
    public var app: String
    public var streamKey: String

    /// The URL without the key (the `tcUrl` of connect).
    public var tcURL: String { "\(secure ? "rtmps" : "rtmp")://\(host):\(port)/\(app)" }

    /// Parses the server URL; a key may also ride at its end when `streamKey` is empty.
    public init(url: String, streamKey: String) throws(RTMPError) {
        let lower = url.lowercased()
        if lower.hasPrefix("rtmps://") {
            secure = true
        } else if lower.hasPrefix("rtmp://") {
            secure = false
        } else {
            throw .protocolViolation("a destination URL starts with rtmp:// or rtmps://")
        }
        let rest = url.dropFirst(secure ? 8 : 7)
        let authority = rest.prefix { $0 != "/" }
        var path = rest.dropFirst(authority.count).drop { $0 == "/" }
        while path.hasSuffix("/") { path = path.dropLast() }
        let hostPart: Substring
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            hostPart = authority[..<colon]
            guard let value = Int(authority[authority.index(after: colon)...]), (1...65535).contains(value) else {
                throw .protocolViolation("the port in \(url) is not a number from 1 to 65535")
            }
            port = value
        } else {
            hostPart = authority
            port = secure ? 443 : 1935
        }
        host = String(String(hostPart).trimmingCharacters(in: ["[", "]"]))
        guard !host.isEmpty else { throw .protocolViolation("\(url) names no host") }
        guard !path.isEmpty else { throw .protocolViolation("\(url) names no application (rtmp://host/app)") }
        if streamKey.isEmpty, let slash = path.lastIndex(of: "/") {
            app = String(path[..<slash])
            self.streamKey = String(path[path.index(after: slash)...])
        } else {
            app = String(path)
            self.streamKey = streamKey
        }
        guard !self.streamKey.isEmpty else { throw .protocolViolation("no stream key") }
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> Substring {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return slice
    }
}

/// The publishing client's side of RTMP as a state machine fed with bytes (no sockets):
/// handshake, connect, releaseStream / FCPublish / createStream, publish, then media until
/// FCUnpublish / deleteStream. It answers pings and acknowledges what it receives.
public struct RTMPPublishSession: Sendable {
    public enum Phase: Sendable, Equatable {
        case handshaking
        case connecting
        case creatingStream
        case publishing
        case live
        case closed
    }

    public enum Event: Sendable, Equatable {
        /// Bytes to write to the server.
        case send([UInt8])
        /// The server accepted the publish: media may flow.
        case live
        /// The server refused (`code` as it said it, e.g. NetStream.Publish.BadName).
        case rejected(code: String, description: String)
    }

    public let endpoint: RTMPEndpoint
    public private(set) var phase = Phase.handshaking
    public private(set) var streamID: UInt32 = 0
    private var handshakeBytes: [UInt8] = []
    private var reader = RTMPChunkReader()
    private var writer = RTMPChunkWriter()
    private var flow = RTMPFlowControl()
    private let outgoingChunkSize = 4096

    private enum Transaction {
        static let connect = 1.0
        static let releaseStream = 2.0
        static let fcPublish = 3.0
        static let createStream = 4.0
        static let publish = 5.0
    }

    public init(endpoint: RTMPEndpoint) {
        self.endpoint = endpoint
    }

    /// C0 and C1.
    public func start() -> [UInt8] { RTMPHandshake.clientHello() }

    public mutating func receive(_ bytes: [UInt8]) throws(RTMPError) -> [Event] {
        flow.count(bytes.count)
        var events: [Event] = []
        var input = bytes
        if phase == .handshaking {
            handshakeBytes += input
            guard let c2 = try RTMPHandshake.clientReply(to: handshakeBytes) else { return [] }
            input = Array(handshakeBytes.dropFirst(1 + 2 * RTMPHandshake.packetSize))
            handshakeBytes = []
            var out = c2
            writer.write(.setChunkSize(UInt32(outgoingChunkSize)), into: &out)
            writer.setChunkSize(outgoingChunkSize)
            writer.write(.command([
                .string("connect"), .number(Transaction.connect),
                .object([
                    ("app", .string(endpoint.app)), ("type", .string("nonprivate")), ("flashVer", .string("FMLE/3.0 (compatible; Tally)")),
                    ("tcUrl", .string(endpoint.tcURL)),
                ]),
            ]), into: &out)
            events.append(.send(out))
            phase = .connecting
        }
        for message in try reader.read(input) { events += try handle(message) }
        if let acknowledgement = flow.acknowledgement(writer: writer) { events.append(.send(acknowledgement)) }
        return events
    }

    private mutating func handle(_ message: RTMPMessage) throws(RTMPError) -> [Event] {
        var reply: [UInt8] = []
        if flow.handle(message, writer: writer, into: &reply) { return reply.isEmpty ? [] : [.send(reply)] }
        switch message.typeID {
        case RTMPMessage.Kind.commandAMF0:
            let values: [AMF0Value]
            do {
                values = try AMF0.decode(message.payload[...])
            } catch {
                throw .protocolViolation("unreadable command: \(error)")
            }
            return try command(values)
        default:
            return []
        }
    }

    private mutating func command(_ values: [AMF0Value]) throws(RTMPError) -> [Event] {
        guard let name = values.first?.string else { return [] }
        let transaction = values.count > 1 ? values[1].number ?? 0 : 0
        let info = values.count > 3 ? values[3] : (values.count > 2 ? values[2] : .null)
        switch (name, transaction) {
        case ("_result", Transaction.connect):
            var out: [UInt8] = []
            let key = AMF0Value.string(endpoint.streamKey)
            writer.write(.command([.string("releaseStream"), .number(Transaction.releaseStream), .null, key]), into: &out)
            writer.write(.command([.string("FCPublish"), .number(Transaction.fcPublish), .null, key]), into: &out)
            writer.write(.command([.string("createStream"), .number(Transaction.createStream), .null]), into: &out)
            phase = .creatingStream
            return [.send(out)]
        case ("_error", Transaction.connect):
            phase = .closed
            return [.rejected(code: info["code"]?.string ?? "NetConnection.Connect.Rejected",
                              description: info["description"]?.string ?? "the server refused to connect to application \(endpoint.app)")]
        case ("_result", Transaction.createStream):
            guard values.count > 3, let id = values[3].number, id >= 0, id < 4_294_967_296 else {
                throw .protocolViolation("createStream answered without a stream ID")
            }
            streamID = UInt32(id)
            var out: [UInt8] = []
            writer.write(.command([.string("publish"), .number(Transaction.publish), .null, .string(endpoint.streamKey), .string("live")],
                                  streamID: streamID), chunkStream: 8, into: &out)
            phase = .publishing
            return [.send(out)]
        case ("_error", Transaction.createStream):
            phase = .closed
            return [.rejected(code: info["code"]?.string ?? "createStream.Failed", description: info["description"]?.string ?? "the server refused to create a stream")]
        case ("onStatus", _):
            let code = info["code"]?.string ?? ""
            let level = info["level"]?.string ?? ""
            if code == "NetStream.Publish.Start" {
                guard phase == .publishing else { return [] }
                phase = .live
                return [.live]
            }
            if level == "error" || code.hasSuffix(".BadName") || code.hasSuffix(".Rejected") || code.hasSuffix(".Failed") {
                phase = .closed
                return [.rejected(code: code, description: info["description"]?.string ?? code)]
            }
            return []
        default:
            return []
        }
    }

    /// Media or metadata for the live stream, chunked.
    public mutating func media(type: FLVTagKind, timestamp: UInt32, body: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        let typeID: UInt8 = switch type {
        case .audio: RTMPMessage.Kind.audio
        case .video: RTMPMessage.Kind.video
        case .metadata: RTMPMessage.Kind.dataAMF0
        }
        writer.write(RTMPMessage(typeID: typeID, streamID: streamID, timestamp: timestamp, payload: body), into: &out)
        return out
    }

    /// `@setDataFrame onMetaData` with what players show about the stream.
    public mutating func metadata(_ properties: [(String, AMF0Value)]) -> [UInt8] {
        media(type: .metadata, timestamp: 0, body: AMF0.encode([.string("@setDataFrame"), .string("onMetaData"), .ecmaArray(properties)]))
    }

    /// FCUnpublish and deleteStream: a clean end the server logs as such.
    public mutating func unpublish() -> [UInt8] {
        guard phase != .closed else { return [] }
        var out: [UInt8] = []
        writer.write(.command([.string("FCUnpublish"), .number(6), .null, .string(endpoint.streamKey)]), into: &out)
        if streamID != 0 { writer.write(.command([.string("deleteStream"), .number(7), .null, .number(Double(streamID))]), into: &out) }
        phase = .closed
        return out
    }
}

public enum FLVTagKind: Sendable {
    case audio
    case video
    case metadata
}
