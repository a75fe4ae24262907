import CBenchSocket
import DTLS
import Glibc
import RTCP
import SRTP
import STUN

/// What the server's SDP answer says about its end of the transport.
struct RemoteTransport {
    var usernameFragment: String
    var password: String
    var fingerprint: String
    var ip: String
    var port: UInt16
    /// Header extension ids by URI, as the answer confirmed them.
    var extensions: [String: UInt8]

    init(answer: String) throws {
        var fragment: String?, password: String?, fingerprint: String?, candidate: (String, UInt16)?
        var extensions: [String: UInt8] = [:]
        for line in answer.split(whereSeparator: \.isNewline) {
            if line.hasPrefix("a=ice-ufrag:") { fragment = String(line.dropFirst("a=ice-ufrag:".count)) }
            if line.hasPrefix("a=ice-pwd:") { password = String(line.dropFirst("a=ice-pwd:".count)) }
            if line.hasPrefix("a=fingerprint:sha-256 ") { fingerprint = String(line.dropFirst("a=fingerprint:sha-256 ".count)) }
            if line.hasPrefix("a=extmap:") {
                let fields = line.dropFirst("a=extmap:".count).split(separator: " ")
                if fields.count >= 2, let id = UInt8(fields[0].prefix { $0 != "/" }) { extensions[String(fields[1])] = id }
            }
            // a=candidate:<foundation> <component> <transport> <priority> <ip> <port> typ host
            let fields = line.split(separator: " ")
            if line.hasPrefix("a=candidate:"), candidate == nil, fields.count >= 8, fields[2].lowercased() == "udp", let port = UInt16(fields[5]) {
                candidate = (String(fields[4]), port)
            }
        }
        guard let fragment, let password, let fingerprint, let candidate else {
            throw BenchError("the answer lacks ICE credentials, a fingerprint or a UDP candidate:\n\(answer)")
        }
        usernameFragment = fragment
        self.password = password
        self.fingerprint = fingerprint
        (ip, port) = candidate
        self.extensions = extensions
    }
}

/// The client end of one WebRTC transport, as a browser is: ICE controlling (it sends the
/// checks and nominates), DTLS client, SRTP. Single-threaded; the bench's loop drives it.
final class BenchPeer {
    enum Inbound {
        case none
        /// A decrypted RTP packet, in place in the buffer given to `receive`.
        case rtp
        case rtcp([RTCPPacket])
    }

    let localFragment = BenchPeer.token(8)
    let localPassword = BenchPeer.token(24)
    private(set) var fd: Int32 = -1
    private var remote: RemoteTransport?
    private var dtls: DTLSSession?
    private(set) var srtp: SRTPSession?
    private(set) var failure: String?
    private var iceSucceeded = false
    private var nextCheckAt: Int64 = 0
    private var nextDTLSTimeoutAt: Int64?
    private let tieBreaker = UInt64.random(in: 0...UInt64.max)
    private(set) var sendErrors = 0

    var isConnected: Bool { srtp != nil }

    /// Opens the socket toward the answer's candidate and starts checking it.
    func connect(answer: String, context: DTLSContext) throws {
        let remote = try RemoteTransport(answer: answer)
        self.remote = remote
        dtls = try DTLSSession(context: context, remoteFingerprint: remote.fingerprint, mtu: 1200)
        let fd = tally_bench_udp_connect(remote.ip, remote.port, 4 << 20)
        guard fd >= 0 else { throw BenchError("UDP socket to \(remote.ip):\(remote.port): \(String(cString: strerror(-fd)))") }
        self.fd = fd
    }

    var extensions: [String: UInt8] { remote?.extensions ?? [:] }

    /// Checks every 50 ms until one succeeds, then every 2 s to keep consent; DTLS timers.
    func tick(now: Int64) {
        guard let remote, failure == nil else { return }
        if now >= nextCheckAt {
            nextCheckAt = now + (iceSucceeded ? 2_000_000_000 : 50_000_000)
            let request = STUNMessage(type: .bindingRequest, transactionID: .random(), attributes: [
                .username("\(remote.usernameFragment):\(localFragment)"), .priority(0x6E00_1EFF),
                .iceControlling(tieBreaker), .useCandidate,
            ])
            send(STUNCodec.encode(request, integrityKey: Array(remote.password.utf8)))
        }
        if let due = nextDTLSTimeoutAt, now >= due, let dtls {
            handle(dtls.handleTimeout(), now: now)
        }
    }

    /// One datagram from the server; RTP is decrypted in place.
    func receive(_ packet: inout [UInt8], now: Int64) -> Inbound {
        guard let first = packet.first else { return .none }
        switch first {
        case 0...3:
            if let message = try? STUNCodec.parse(packet), message.message.type == .bindingSuccess, !iceSucceeded, let dtls {
                iceSucceeded = true
                nextCheckAt = now + 2_000_000_000
                handle(dtls.start(), now: now)
            }
            return .none
        case 20...63:
            if let dtls { handle(dtls.receive(packet), now: now) }
            return .none
        case 128...191:
            guard let srtp else { return .none }
            if packet.count >= 2, (192...223).contains(packet[1]) {
                guard (try? srtp.unprotectRTCP(&packet)) != nil, let parsed = try? RTCPCompound.parse(packet) else { return .none }
                return .rtcp(parsed)
            }
            return (try? srtp.unprotectRTP(&packet)) != nil ? .rtp : .none
        default:
            return .none
        }
    }

    func sendRTP(_ plain: [UInt8]) {
        guard let srtp else { return }
        var packet = plain
        guard (try? srtp.protectRTP(&packet)) != nil else { return }
        send(packet)
    }

    func sendRTCP(_ packets: [RTCPPacket]) {
        guard let srtp else { return }
        var packet = RTCPCompound.serialize(packets)
        guard (try? srtp.protectRTCP(&packet)) != nil else { return }
        send(packet)
    }

    func close() {
        if let dtls, srtp != nil { for case .send(let datagram) in dtls.close() { send(datagram) } }
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    private func handle(_ actions: [DTLSSession.Action], now: Int64) {
        for action in actions {
            switch action {
            case .send(let datagram):
                send(datagram)
            case .connected(let keys):
                do {
                    srtp = try SRTPSession(keys: keys)
                } catch {
                    failure = "SRTP: \(error)"
                }
            case .failed(let reason):
                failure = "DTLS: \(reason)"
            case .closed:
                failure = "the server closed DTLS"
            case .applicationData:
                break
            }
        }
        nextDTLSTimeoutAt = dtls?.retransmissionTimeout.map { now + Int64($0.components.seconds) * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000 }
    }

    private func send(_ bytes: [UInt8]) {
        guard fd >= 0 else { return }
        let result = bytes.withUnsafeBufferPointer { tally_bench_send(fd, $0.baseAddress, $0.count) }
        if result < 0 { sendErrors += 1 }
    }

    static let audioExtensionLines = """
        a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
        a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
        a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
        """

    static let opusLines = """
        a=rtpmap:111 opus/48000/2
        a=rtcp-fb:111 transport-cc
        a=fmtp:111 minptime=10;useinbandfec=1
        """

    /// VP8 with RTX and the feedback Chromium offers.
    static let vp8Lines = """
        a=rtpmap:96 VP8/90000
        a=rtcp-fb:96 goog-remb
        a=rtcp-fb:96 transport-cc
        a=rtcp-fb:96 ccm fir
        a=rtcp-fb:96 nack
        a=rtcp-fb:96 nack pli
        a=rtpmap:97 rtx/90000
        a=fmtp:97 apt=96
        """

    /// A BUNDLE offer, as a browser makes it: sections numbered from mid 0, each with this
    /// peer's ICE credentials, the certificate's fingerprint, actpass and rtcp-mux.
    func offer(fingerprint: String, sections: [(mediaLine: String, attributes: String)]) -> String {
        var lines = ["v=0", "o=- \(UInt32.random(in: 1...UInt32.max)) 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
                     "a=group:BUNDLE " + sections.indices.map(String.init).joined(separator: " "), "a=extmap-allow-mixed", "a=msid-semantic: WMS bench"]
        for (mid, section) in sections.enumerated() {
            lines += [section.mediaLine, "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0", "a=ice-ufrag:\(localFragment)", "a=ice-pwd:\(localPassword)",
                      "a=fingerprint:sha-256 \(fingerprint)", "a=setup:actpass", "a=mid:\(mid)", "a=rtcp-mux", "a=rtcp-rsize"]
            lines += section.attributes.split(separator: "\n").map(String.init)
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    static func token(_ length: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return String((0..<length).map { _ in alphabet.randomElement()! })
    }
}
