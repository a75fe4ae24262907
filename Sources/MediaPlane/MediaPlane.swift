import NIOCore
import RTCP
import RTP
import SDP

/// One media session on a transport, as the transport names it in URLs and logs.
public struct SessionID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}

/// Who holds a media session: only the same identity may close it, and each identity and
/// each client address may hold only so many.
public struct SessionOwner: Sendable, Hashable {
    /// An account, an invite or a stream key, as the API names it (`user:…`, `invite:…`).
    public var identity: String
    /// The client's IP address as the HTTP server saw it.
    public var address: String

    public init(identity: String, address: String) {
        self.identity = identity
        self.address = address
    }
}

/// Why a transport refused to open a session.
public enum MediaTransportError: Error, CustomStringConvertible, Equatable {
    case tooManySessions
    case tooManySessionsForOwner(limit: Int)
    case tooManySessionsForAddress(limit: Int)
    case tooManyMediaSections(limit: Int)
    case notRunning

    public var description: String {
        switch self {
        case .tooManySessions: "the WebRTC transport is at its session limit"
        case .tooManySessionsForOwner(let limit): "this identity already has \(limit) media sessions open"
        case .tooManySessionsForAddress(let limit): "this address already has \(limit) media sessions open"
        case .tooManyMediaSections(let limit): "an offer may carry at most \(limit) media sections"
        case .notRunning: "the WebRTC transport is not running"
        }
    }
}

/// An open session, as its sink and the SFU hold it. Its transport sends on it; nothing
/// else is asked of it, so a transport may be WebRTC to a browser or a relay to another node.
public protocol MediaSession: AnyObject {
    var id: SessionID { get }
}

/// Receives one session's media and events, on its transport's event loop.
public protocol MediaSink: AnyObject {
    /// The session's media can flow (for WebRTC: ICE, DTLS and SRTP are up).
    func sessionDidConnect(_ session: any MediaSession, transport: any MediaTransport)
    func session(_ session: any MediaSession, didReceive packet: RTPPacket, transport: any MediaTransport)
    func session(_ session: any MediaSession, didReceive packets: [RTCPPacket], transport: any MediaTransport)
    func sessionDidClose(_ session: any MediaSession, reason: String)
    /// About every 100 ms while the session is connected: periodic feedback such as NACKs.
    func tick(_ session: any MediaSession, transport: any MediaTransport)
}

extension MediaSink {
    public func tick(_ session: any MediaSession, transport: any MediaTransport) {}
}

/// Where one thread's share of a fan-out is sent from (see `MediaTransport.fanOut`).
public protocol MediaLane: AnyObject {
    /// Builds one RTP packet with `build` and sends it on `session`. `build` gets at least
    /// `capacity` bytes and returns the packet's length, or nil to send nothing; it runs
    /// exactly once whether or not the packet can leave, so whatever it numbers stays in step.
    func sendRTP(on session: any MediaSession, capacity: Int, _ build: (UnsafeMutableRawBufferPointer) -> Int?)
}

/// What the SFU asks of a transport: open and close sessions whose answer it negotiated,
/// send RTP and RTCP on them, and share large fan-outs. Everything but `open` and `close`
/// runs on `loop`, where the transport raises its sinks' events.
public protocol MediaTransport: AnyObject, Sendable {
    var loop: any EventLoop { get }
    /// Time since the transport started: the clock its sinks are fed.
    var now: Duration { get }
    /// Room a packet buffer needs after its end for the transport's protection (SRTP's tag).
    var protectionOverhead: Int { get }
    /// Media sections an offer may carry.
    var maxMediaSections: Int { get }

    /// Opens a session held by `owner`. `negotiate` turns the transport's own parameters
    /// (ICE credentials, fingerprint, candidates) into the answer; `makeSink` then gives the
    /// session its sink. Both run on the loop.
    func open(tag: String, owner: SessionOwner, negotiate: @escaping @Sendable (LocalTransportParameters) throws -> SDPAnswer,
              makeSink: @escaping @Sendable (SDPAnswer) -> any MediaSink) async throws -> (id: SessionID, answer: SDPAnswer)
    /// Closes a session, if `tag` (when given) is the one it was opened with and `identity`
    /// (when given) the one that holds it.
    func close(sessionID: SessionID, tag: String?, identity: String?, reason: String) async -> Bool
    /// Closes every session opened with `tag`; how many there were.
    func close(tag: String, reason: String) async -> Int
    /// Closes every session `identity` holds (an invite withdrawn); how many there were.
    func close(identity: String, reason: String) async -> Int
    /// Open sessions opened with `tag` (a broadcast's players, say).
    func sessionCount(tag: String) async -> Int
    /// Whether this transport was started with the loss-injection test hook.
    var allowsLossInjection: Bool { get }
    /// Drops `probability` of the RTP sent on a session, as a lossy path would; false unless
    /// `allowsLossInjection` and the session exists.
    func setEgressLoss(sessionID: SessionID, probability: Double) async -> Bool

    /// Sends a finished RTP packet (with `protectionOverhead` spare capacity).
    func sendRTP(_ packet: ByteBuffer, on session: any MediaSession)
    func sendRTCP(_ packets: [RTCPPacket], on session: any MediaSession)
    /// Hands `count` items of one fan-out (a packet's copies, one per subscriber) to `body` in
    /// ranges, each with the lane to send its copies through. Ranges may run on several
    /// threads at once: `body` must then touch nothing two items share. Returns how many
    /// copies threads other than the loop built.
    func fanOut(count: Int, _ body: (any MediaLane, Range<Int>) -> Void) -> Int
    /// Sends what is queued now, for work that runs outside the transport's own reads.
    func flushOutgoing()
}

extension MediaTransport {
    public func close(sessionID: SessionID, reason: String) async -> Bool {
        await close(sessionID: sessionID, tag: nil, identity: nil, reason: reason)
    }

    /// Opens a session that answers `offer` with `SDPAnswerer`, in the codecs `policy`
    /// allows and with what `intent` asks of each section, once the transport lends its own
    /// parameters. An offer with more sections than the transport takes is refused first.
    public func open(offer: SessionDescription, tag: String, owner: SessionOwner, policy: CodecPolicy = .standard,
                     intent: @escaping @Sendable (MediaDescription) -> MediaIntent,
                     makeSink: @escaping @Sendable (SDPAnswer) -> any MediaSink) async throws -> (id: SessionID, answer: SDPAnswer) {
        guard offer.media.count <= maxMediaSections else { throw MediaTransportError.tooManyMediaSections(limit: maxMediaSections) }
        return try await open(tag: tag, owner: owner, negotiate: { local in
            try SDPAnswerer.answer(to: offer, transport: local, policy: policy, sessionID: String(UInt64.random(in: 1...UInt64(Int64.max))), intent: intent)
        }, makeSink: makeSink)
    }

    /// Sends an RTP packet held as bytes (an echo, a cached packet resent).
    public func sendRTP(_ bytes: [UInt8], on session: any MediaSession) {
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count + protectionOverhead)
        buffer.writeBytes(bytes)
        sendRTP(buffer, on: session)
    }
}
