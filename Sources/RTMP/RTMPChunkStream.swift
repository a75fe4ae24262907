/// An RTMP message (Adobe RTMP spec §5.4, §6): what the chunk stream carries.
public struct RTMPMessage: Sendable, Equatable {
    public var typeID: UInt8
    public var streamID: UInt32
    /// Milliseconds; RTMP timestamps wrap at 2³².
    public var timestamp: UInt32
    public var payload: [UInt8]

    public init(typeID: UInt8, streamID: UInt32, timestamp: UInt32, payload: [UInt8]) {
        self.typeID = typeID
        self.streamID = streamID
        self.timestamp = timestamp
        self.payload = payload
    }

    public enum Kind {
        public static let setChunkSize: UInt8 = 1
        public static let abort: UInt8 = 2
        public static let acknowledgement: UInt8 = 3
        public static let userControl: UInt8 = 4
        public static let windowAcknowledgementSize: UInt8 = 5
        public static let setPeerBandwidth: UInt8 = 6
        public static let audio: UInt8 = 8
        public static let video: UInt8 = 9
        public static let dataAMF3: UInt8 = 15
        public static let commandAMF3: UInt8 = 17
        public static let dataAMF0: UInt8 = 18
        public static let commandAMF0: UInt8 = 20
        public static let aggregate: UInt8 = 22
    }

    static func uint32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    public static func setChunkSize(_ size: UInt32) -> RTMPMessage {
        RTMPMessage(typeID: Kind.setChunkSize, streamID: 0, timestamp: 0, payload: uint32(size & 0x7FFF_FFFF))
    }

    public static func acknowledgement(_ received: UInt32) -> RTMPMessage {
        RTMPMessage(typeID: Kind.acknowledgement, streamID: 0, timestamp: 0, payload: uint32(received))
    }

    public static func windowAcknowledgementSize(_ size: UInt32) -> RTMPMessage {
        RTMPMessage(typeID: Kind.windowAcknowledgementSize, streamID: 0, timestamp: 0, payload: uint32(size))
    }

    public static func setPeerBandwidth(_ size: UInt32, limit: UInt8 = 2) -> RTMPMessage {
        RTMPMessage(typeID: Kind.setPeerBandwidth, streamID: 0, timestamp: 0, payload: uint32(size) + [limit])
    }

    public static func userControl(event: UInt16, value: UInt32) -> RTMPMessage {
        RTMPMessage(typeID: Kind.userControl, streamID: 0, timestamp: 0, payload: [UInt8(event >> 8), UInt8(event & 0xFF)] + uint32(value))
    }

    public static func command(_ values: [AMF0Value], streamID: UInt32 = 0) -> RTMPMessage {
        RTMPMessage(typeID: Kind.commandAMF0, streamID: streamID, timestamp: 0, payload: AMF0.encode(values))
    }

    /// The 32-bit value of a protocol control message (set chunk size, ack, window size).
    public var controlValue: UInt32? {
        guard payload.count >= 4 else { return nil }
        return UInt32(payload[0]) << 24 | UInt32(payload[1]) << 16 | UInt32(payload[2]) << 8 | UInt32(payload[3])
    }
}

public enum RTMPError: Error, Equatable, CustomStringConvertible {
    case badHandshake(String)
    case badChunk(String)
    case messageTooLarge(Int)
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .badHandshake(let why): "RTMP handshake: \(why)"
        case .badChunk(let why): "RTMP chunk stream: \(why)"
        case .messageTooLarge(let size): "RTMP message of \(size) bytes is over the limit"
        case .protocolViolation(let why): "RTMP: \(why)"
        }
    }
}

/// Splits messages into chunks (§5.3). Each message starts with a full (type 0) header on
/// its chunk stream; its continuation chunks use type 3.
public struct RTMPChunkWriter: Sendable {
    public private(set) var chunkSize = 128

    public init() {}

    /// Call after sending a Set Chunk Size message.
    public mutating func setChunkSize(_ size: Int) {
        chunkSize = max(1, min(size, 0x7FFF_FFFF))
    }

    /// The chunk stream a message travels on: control, commands and media kept apart.
    public static func chunkStream(for message: RTMPMessage) -> UInt32 {
        switch message.typeID {
        case 1...6: 2
        case RTMPMessage.Kind.audio: 4
        case RTMPMessage.Kind.video: 6
        case RTMPMessage.Kind.dataAMF0: 5
        default: 3
        }
    }

    public func write(_ message: RTMPMessage, chunkStream: UInt32? = nil, into out: inout [UInt8]) {
        let csid = chunkStream ?? Self.chunkStream(for: message)
        let extended = message.timestamp >= 0xFF_FFFF
        let stamp = extended ? 0xFF_FFFF : message.timestamp
        Self.basicHeader(format: 0, csid: csid, into: &out)
        let length = UInt32(message.payload.count)
        out += [UInt8(stamp >> 16), UInt8(stamp >> 8 & 0xFF), UInt8(stamp & 0xFF),
                UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), message.typeID]
        // The message stream ID is the one little-endian field.
        out += [UInt8(message.streamID & 0xFF), UInt8(message.streamID >> 8 & 0xFF), UInt8(message.streamID >> 16 & 0xFF), UInt8(message.streamID >> 24)]
        if extended { out += RTMPMessage.uint32(message.timestamp) }
        var offset = 0
        repeat {
            if offset > 0 {
                Self.basicHeader(format: 3, csid: csid, into: &out)
                if extended { out += RTMPMessage.uint32(message.timestamp) }
            }
            let end = min(offset + chunkSize, message.payload.count)
            out += message.payload[offset..<end]
            offset = end
        } while offset < message.payload.count
    }

    static func basicHeader(format: UInt8, csid: UInt32, into out: inout [UInt8]) {
        switch csid {
        case 2...63: out.append(format << 6 | UInt8(csid))
        case 64...319: out += [format << 6, UInt8(csid - 64)]
        default:
            let value = csid - 64
            out += [format << 6 | 1, UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF)]
        }
    }
}

/// Reassembles messages from chunks (§5.3), with every header form, extended timestamps
/// and interleaved chunk streams. Hostile input is bounded: message size, chunk size and the
/// number of chunk streams in flight all have limits, and a violation is an error, never a
/// crash or an unbounded buffer.
public struct RTMPChunkReader: Sendable {
    public private(set) var chunkSize = 128
    public let maxMessageSize: Int
    public let maxChunkStreams: Int
    private var buffer: [UInt8] = []
    private var streams: [UInt32: StreamState] = [:]

    private struct StreamState: Sendable {
        var timestamp: UInt32 = 0
        var delta: UInt32 = 0
        var length = 0
        var typeID: UInt8 = 0
        var streamID: UInt32 = 0
        var extended = false
        var partial: [UInt8] = []
        var started = false
    }

    /// The smallest chunk size a peer may set: the protocol's default (RTMP 1.0 §5.4.1).
    public static let minimumChunkSize: UInt32 = 128

    public init(maxMessageSize: Int = 8 << 20, maxChunkStreams: Int = 64) {
        self.maxMessageSize = maxMessageSize
        self.maxChunkStreams = maxChunkStreams
    }

    /// Bytes held waiting for the rest of a chunk.
    public var buffered: Int { buffer.count + streams.values.reduce(0) { $0 + $1.partial.count } }

    /// Takes bytes from the wire; returns the messages they complete. A Set Chunk Size from
    /// the peer takes effect at once, as the spec says.
    public mutating func read(_ bytes: some Collection<UInt8>) throws(RTMPError) -> [RTMPMessage] {
        buffer += bytes
        var messages: [RTMPMessage] = []
        var offset = 0
        while let (message, used) = try parseChunk(at: offset) {
            offset += used
            guard let message else { continue }
            if message.typeID == RTMPMessage.Kind.setChunkSize {
                // Below the default every byte of payload costs a chunk header and a parse:
                // a peer asking for 1-byte chunks makes the reader work a hundred times as hard.
                guard let value = message.controlValue, value >= Self.minimumChunkSize, value <= 0x7FFF_FFFF else {
                    throw .protocolViolation("Set Chunk Size to \(message.controlValue.map(String.init) ?? "nothing"); the least accepted is \(Self.minimumChunkSize)")
                }
                chunkSize = Int(min(value, UInt32(maxMessageSize)))
            }
            messages.append(message)
        }
        buffer.removeFirst(offset)
        return messages
    }

    /// One chunk at `start`: nil when more bytes are needed; otherwise the message it
    /// completed (if any) and the bytes it took.
    private mutating func parseChunk(at start: Int) throws(RTMPError) -> (RTMPMessage?, Int)? {
        var index = start
        guard index < buffer.count else { return nil }
        let first = buffer[index]
        let format = first >> 6
        var csid = UInt32(first & 0x3F)
        index += 1
        if csid == 0 {
            guard index < buffer.count else { return nil }
            csid = UInt32(buffer[index]) + 64
            index += 1
        } else if csid == 1 {
            guard index + 1 < buffer.count else { return nil }
            csid = UInt32(buffer[index]) + UInt32(buffer[index + 1]) << 8 + 64
            index += 2
        }
        let headerSize = [11, 7, 3, 0][Int(format)]
        guard index + headerSize <= buffer.count else { return nil }
        if streams[csid] == nil {
            guard format == 0 else { throw .badChunk("chunk stream \(csid) starts without a full header") }
            guard streams.count < maxChunkStreams else { throw .badChunk("more than \(maxChunkStreams) chunk streams") }
        }
        var state = streams[csid] ?? StreamState()
        var stamp: UInt32 = 0
        if format <= 2 {
            stamp = UInt32(buffer[index]) << 16 | UInt32(buffer[index + 1]) << 8 | UInt32(buffer[index + 2])
        }
        if format <= 1 {
            let length = Int(buffer[index + 3]) << 16 | Int(buffer[index + 4]) << 8 | Int(buffer[index + 5])
            guard length <= maxMessageSize else { throw .messageTooLarge(length) }
            guard state.partial.isEmpty || length == state.length else { throw .badChunk("message length changed mid-message") }
            state.length = length
            state.typeID = buffer[index + 6]
        }
        if format == 0 {
            state.streamID = UInt32(buffer[index + 7]) | UInt32(buffer[index + 8]) << 8 | UInt32(buffer[index + 9]) << 16 | UInt32(buffer[index + 10]) << 24
        }
        index += headerSize
        if format <= 2 { state.extended = stamp == 0xFF_FFFF }
        if state.extended {
            guard index + 4 <= buffer.count else { return nil }
            let value = UInt32(buffer[index]) << 24 | UInt32(buffer[index + 1]) << 16 | UInt32(buffer[index + 2]) << 8 | UInt32(buffer[index + 3])
            index += 4
            if format <= 2 { stamp = value }
        }
        let startsMessage = state.partial.isEmpty
        if startsMessage {
            switch format {
            case 0: state.timestamp = stamp; state.delta = 0
            case 1, 2: state.delta = stamp; state.timestamp &+= stamp
            default:
                guard state.started else { throw .badChunk("type 3 chunk with nothing to continue") }
                state.timestamp &+= state.delta
            }
        }
        let wanted = min(chunkSize, state.length - state.partial.count)
        guard index + wanted <= buffer.count else { return nil }
        state.partial += buffer[index..<index + wanted]
        index += wanted
        state.started = true
        var message: RTMPMessage?
        if state.partial.count == state.length {
            message = RTMPMessage(typeID: state.typeID, streamID: state.streamID, timestamp: state.timestamp, payload: state.partial)
            state.partial = []
        }
        streams[csid] = state
        return (message, index - start)
    }
}

/// The simple (version 3, no digest) handshake (§5.2), which every server we push to
/// accepts: C0+C1 out, S0+S1+S2 in, C2 (an echo of S1) out. As a server: C0+C1 in,
/// S0+S1+S2 (S2 an echo of C1) out, C2 in. OBS (librtmp without encryption) and ffmpeg
/// publishing both accept a server that answers this way.
public enum RTMPHandshake {
    public static let packetSize = 1536

    public static func clientHello(time: UInt32 = 0) -> [UInt8] {
        var bytes: [UInt8] = [0x03] + RTMPMessage.uint32(time) + [0, 0, 0, 0]
        bytes += (0..<(packetSize - 8)).map { _ in UInt8.random(in: 0...255) }
        return bytes
    }

    /// Checks S0+S1+S2 and returns C2; nil while fewer than 3073 bytes are in.
    public static func clientReply(to response: [UInt8]) throws(RTMPError) -> [UInt8]? {
        guard response.count >= 1 + 2 * packetSize else { return nil }
        guard response[0] == 0x03 else { throw .badHandshake("server speaks RTMP version \(response[0]), not 3") }
        return Array(response[1...packetSize])
    }

    /// Checks C0+C1 and returns S0+S1+S2; nil while fewer than 1537 bytes are in.
    public static func serverReply(to hello: [UInt8], time: UInt32 = 0) throws(RTMPError) -> [UInt8]? {
        guard let version = hello.first else { return nil }
        guard version == 3 else { throw .badHandshake("client asks for RTMP version \(version) (6 and 8 are RTMPE); only 3 is served") }
        guard hello.count >= 1 + packetSize else { return nil }
        var reply: [UInt8] = [0x03] + RTMPMessage.uint32(time) + [0, 0, 0, 0]
        reply += (0..<(packetSize - 8)).map { _ in UInt8.random(in: 0...255) }
        reply += hello[1...packetSize]
        return reply
    }
}

/// What each end of an RTMP connection owes the other whatever else it is doing (§5.4):
/// an Acknowledgement every window of bytes received, and a ping response to each ping.
struct RTMPFlowControl: Sendable {
    private var received: UInt64 = 0
    private var acknowledged: UInt64 = 0
    private var window: UInt64 = 2_500_000

    mutating func count(_ bytes: Int) {
        received += UInt64(bytes)
    }

    /// Takes a Window Acknowledgement Size or a User Control message, writing any reply into
    /// `out`; false for every other message.
    mutating func handle(_ message: RTMPMessage, writer: RTMPChunkWriter, into out: inout [UInt8]) -> Bool {
        switch message.typeID {
        case RTMPMessage.Kind.windowAcknowledgementSize:
            if let size = message.controlValue, size > 0 { window = UInt64(size) }
            return true
        case RTMPMessage.Kind.userControl:
            // Ping request (6) wants a ping response (7) with the same value.
            guard message.payload.count >= 6, message.payload[0] == 0, message.payload[1] == 6 else { return true }
            let value = UInt32(message.payload[2]) << 24 | UInt32(message.payload[3]) << 16 | UInt32(message.payload[4]) << 8 | UInt32(message.payload[5])
            writer.write(.userControl(event: 7, value: value), into: &out)
            return true
        default:
            return false
        }
    }

    /// The Acknowledgement due, if a window has passed since the last one.
    mutating func acknowledgement(writer: RTMPChunkWriter) -> [UInt8]? {
        guard received - acknowledged >= window else { return nil }
        acknowledged = received
        var out: [UInt8] = []
        writer.write(.acknowledgement(UInt32(truncatingIfNeeded: received)), into: &out)
        return out
    }
}
