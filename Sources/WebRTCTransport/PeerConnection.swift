import DTLS
import ICE
import MediaPlane
import NIOCore
import RTCP
import RTP
import SDP
import SRTP
import STUN

/// What a peer connection asks its owner to do or tells it.
public enum PeerEvent {
    case send([UInt8], to: ICEPath)
    /// ICE nominated a path (first time, or the client moved): media goes there now.
    case selected(ICEPath)
    /// DTLS finished and SRTP keys are in place: media may flow.
    case connected
    case rtp(RTPPacket)
    case rtcp([RTCPPacket])
    case closed(reason: String)
}

/// One browser's connection: ICE-lite → DTLS → SRTP → RTP/RTCP (RFC 8834 §3, RFC 7983).
///
/// Not thread-safe: owned by one event loop; it never touches a socket or reads a clock.
public final class PeerConnection: MediaSession {
    public let id: SessionID
    public let answer: SDPAnswer
    public private(set) var ice: ICELiteAgent
    private let dtls: DTLSSession
    private var srtp: SRTPSession?
    /// Where DTLS last came from, for retransmissions before nomination.
    private var dtlsPath: ICEPath?
    public private(set) var isClosed = false
    /// Counters for logs and metrics.
    public private(set) var stats = Stats()
    /// The share of outgoing RTP a test asked to be dropped (`WebRTCServer.setEgressLoss`).
    var egressLoss = 0.0
    /// How the selected path is reached, kept here by the server so that sending a packet
    /// needs no lookup.
    var selectedRoute: WebRTCServer.Route? {
        didSet {
            if case .udp(let address, let local)? = selectedRoute { udpDestination = DatagramDestination(address, local: local) } else { udpDestination = nil }
        }
    }
    /// The selected UDP path in the kernel's form, for batched sends.
    private(set) var udpDestination: DatagramDestination?
    /// Room a packet needs after its end for SRTP's authentication tag.
    public static let protectionOverhead = SRTPSession.maxOverhead
    /// A session that has not finished ICE and DTLS by then is closed: a real client gets
    /// there in a second or two, and an abandoned offer should not hold its place for long.
    public static let connectTimeout: Duration = .seconds(10)
    private let openedAt: Duration

    public struct Stats: Sendable {
        public var packetsIn = 0
        public var packetsOut = 0
        public var bytesIn = 0
        public var bytesOut = 0
        public var decryptFailures = 0
        public var droppedUnvalidated = 0
        /// Datagrams the kernel refused to send to this peer.
        public var sendFailures = 0
    }

    public init(id: SessionID, answer: SDPAnswer, localUsernameFragment: String, localPassword: String,
                dtlsContext: DTLSContext, mtu: Int, now: Duration) throws {
        self.id = id
        self.answer = answer
        openedAt = now
        ice = ICELiteAgent(localUsernameFragment: localUsernameFragment, localPassword: localPassword,
                           remoteUsernameFragment: answer.remoteIceUsernameFragment, now: now)
        ice.connectTimeout = Self.connectTimeout
        guard answer.remoteFingerprint.algorithm == "sha-256" else {
            throw DTLSError.openSSL("the offer's fingerprint uses \(answer.remoteFingerprint.algorithm); Tally checks sha-256")
        }
        dtls = try DTLSSession(context: dtlsContext, remoteFingerprint: answer.remoteFingerprint.value, mtu: mtu)
    }

    public var selectedPath: ICEPath? { ice.selectedPath }
    /// Whether ICE has selected a path, read without copying the agent: it is asked once
    /// for every packet sent.
    private var isICEConnected: Bool {
        if case .connected = ice.state { return true }
        return false
    }
    public var isConnected: Bool { srtp != nil && !isClosed }

    /// One datagram (or ICE-TCP frame) from `path`.
    public func receive(_ bytes: [UInt8], from path: ICEPath, now: Duration) -> [PeerEvent] {
        guard !isClosed, let first = bytes.first else { return [] }
        stats.packetsIn += 1
        stats.bytesIn += bytes.count
        switch first {
        case 0...3:
            guard let message = try? STUNCodec.parse(bytes) else { return [] }
            return handleICE(ice.receive(message, from: path, now: now))
        case 20...63:
            guard ice.isValidated(path) else { return dropUnvalidated() }
            dtlsPath = path
            var events = handleDTLS(dtls.receive(bytes), replyTo: path)
            if dtls.isFinished && !dtls.isConnected { events += close("DTLS ended before it connected") }
            return events
        case 128...191:
            guard ice.isValidated(path), let srtp else { return dropUnvalidated() }
            var packet = bytes
            if RTCPCompound.looksLikeRTCP(bytes) {
                do {
                    try srtp.unprotectRTCP(&packet)
                    return [.rtcp(try RTCPCompound.parse(packet))]
                } catch {
                    stats.decryptFailures += 1
                    return []
                }
            }
            do {
                try srtp.unprotectRTP(&packet)
                return [.rtp(try RTPPacket(packet))]
            } catch {
                stats.decryptFailures += 1
                return []
            }
        default:
            return []
        }
    }

    /// Call about every 100 ms: DTLS retransmissions, consent freshness.
    public func tick(now: Duration) -> [PeerEvent] {
        guard !isClosed else { return [] }
        var events: [PeerEvent] = []
        if let timeout = dtls.retransmissionTimeout, timeout <= .zero, let path = ice.selectedPath ?? dtlsPath {
            events += handleDTLS(dtls.handleTimeout(), replyTo: path)
        }
        events += handleICE(ice.tick(now: now))
        if srtp == nil, !isClosed, now - openedAt >= Self.connectTimeout {
            events += close("not connected within \(Self.connectTimeout): no DTLS handshake")
        }
        return events
    }

    /// Protects an RTP packet in place for the selected path: the hot path, with no copy.
    /// `buffer` needs `protectionOverhead` writable bytes; false when it cannot be sent.
    func protectRTP(_ buffer: inout ByteBuffer) -> Bool {
        guard let srtp, isICEConnected, !isClosed else { return false }
        let start = buffer.readerIndex, length = buffer.readableBytes
        buffer.reserveCapacity(minimumWritableBytes: Self.protectionOverhead)
        let capacity = buffer.capacity - start
        guard let protectedLength = try? buffer.withVeryUnsafeMutableBytes({ storage throws(SRTPError) in
            try srtp.protectRTP(storage.baseAddress! + start, length: length, capacity: capacity)
        }) else { return false }
        buffer.moveWriterIndex(to: start + protectedLength)
        stats.packetsOut += 1
        stats.bytesOut += protectedLength
        return true
    }

    /// Protects the RTP packet of `length` bytes at `bytes` in place (`capacity` leaves room
    /// for the tag); its protected length, or nil when it cannot be sent.
    func protectRTP(_ bytes: UnsafeMutablePointer<UInt8>, length: Int, capacity: Int) -> Int? {
        guard isICEConnected, !isClosed,
              let protectedLength = try? srtp?.protectRTP(UnsafeMutableRawPointer(bytes), length: length, capacity: capacity) else { return nil }
        stats.packetsOut += 1
        stats.bytesOut += protectedLength
        return protectedLength
    }

    func noteSendFailure() {
        stats.sendFailures += 1
    }

    /// Protects and addresses an RTCP compound for the selected path.
    public func sendRTCP(_ packets: [RTCPPacket]) -> PeerEvent? {
        guard let srtp, let path = ice.selectedPath, !isClosed else { return nil }
        var packet = RTCPCompound.serialize(packets)
        guard (try? srtp.protectRTCP(&packet)) != nil else { return nil }
        stats.packetsOut += 1
        stats.bytesOut += packet.count
        return .send(packet, to: path)
    }

    public func close(_ reason: String) -> [PeerEvent] {
        guard !isClosed else { return [] }
        var events: [PeerEvent] = []
        if let path = ice.selectedPath {
            for case .send(let datagram) in dtls.close() { events.append(.send(datagram, to: path)) }
        }
        isClosed = true
        _ = ice.close(reason)
        return events + [.closed(reason: reason)]
    }

    private func handleICE(_ actions: [ICELiteAgent.Action]) -> [PeerEvent] {
        var events: [PeerEvent] = []
        for action in actions {
            switch action {
            case .send(let bytes, let path):
                events.append(.send(bytes, to: path))
            case .select(let path):
                events.append(.selected(path))
                if answer.dtlsClient && !dtls.isConnected && !dtls.isFinished {
                    events += handleDTLS(dtls.start(), replyTo: path)
                }
            case .close(let reason):
                events += close(reason)
            }
        }
        return events
    }

    private func handleDTLS(_ actions: [DTLSSession.Action], replyTo path: ICEPath) -> [PeerEvent] {
        var events: [PeerEvent] = []
        for action in actions {
            switch action {
            case .send(let datagram):
                events.append(.send(datagram, to: ice.selectedPath ?? path))
            case .connected(let keys):
                do {
                    srtp = try SRTPSession(keys: keys)
                    events.append(.connected)
                } catch {
                    events += close("SRTP setup failed: \(error)")
                }
            case .applicationData:
                // Data channels (SCTP) are not offered; stray application data is ignored.
                break
            case .failed(let reason):
                events += close(reason)
            case .closed:
                events += close("the peer closed DTLS")
            }
        }
        return events
    }

    private func dropUnvalidated() -> [PeerEvent] {
        stats.droppedUnvalidated += 1
        return []
    }
}
