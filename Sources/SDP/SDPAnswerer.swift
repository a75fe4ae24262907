/// What this side of the connection brings: ICE credentials, DTLS fingerprint, candidates.
public struct LocalTransportParameters: Sendable {
    public var iceUsernameFragment: String
    public var icePassword: String
    /// SHA-256 of our certificate as colon-separated upper-case hex.
    public var fingerprintSHA256: String
    /// Values of `a=candidate:` lines.
    public var candidates: [String]

    public init(iceUsernameFragment: String, icePassword: String, fingerprintSHA256: String, candidates: [String]) {
        self.iceUsernameFragment = iceUsernameFragment
        self.icePassword = icePassword
        self.fingerprintSHA256 = fingerprintSHA256
        self.candidates = candidates
    }
}

/// A stream this side will send in a section.
public struct LocalStream: Sendable, Equatable {
    public var ssrc: UInt32
    public var rtxSSRC: UInt32?
    public var cname: String
    public var streamID: String
    public var trackID: String

    public init(ssrc: UInt32, rtxSSRC: UInt32?, cname: String, streamID: String, trackID: String) {
        self.ssrc = ssrc
        self.rtxSSRC = rtxSSRC
        self.cname = cname
        self.streamID = streamID
        self.trackID = trackID
    }
}

/// What Tally wants to do with one offered section.
public struct MediaIntent: Sendable {
    public var receive: Bool
    /// When set, Tally sends this stream (if the offer lets it).
    public var send: LocalStream?

    public init(receive: Bool, send: LocalStream? = nil) {
        self.receive = receive
        self.send = send
    }
}

/// The outcome for one section, in RTP terms: what the transport and SFU work with.
public struct NegotiatedMedia: Sendable, Equatable {
    public var mid: String
    public var kind: MediaKind
    /// From Tally's point of view.
    public var direction: MediaDirection
    public var codec: RTPCodec
    public var retransmission: RTPCodec?
    public var headerExtensions: [HeaderExtension]
    /// The peer's media SSRCs, when it signalled them (no simulcast).
    public var remoteSSRCs: [SSRCDescription]
    public var remoteRetransmissionPairs: [RetransmissionPair]
    /// The simulcast layers the peer sends, in its order (highest first for browsers).
    public var remoteRIDs: [String]
    public var localStream: LocalStream?

    public init(mid: String, kind: MediaKind, direction: MediaDirection, codec: RTPCodec, retransmission: RTPCodec?,
                headerExtensions: [HeaderExtension], remoteSSRCs: [SSRCDescription], remoteRetransmissionPairs: [RetransmissionPair],
                remoteRIDs: [String], localStream: LocalStream?) {
        self.mid = mid
        self.kind = kind
        self.direction = direction
        self.codec = codec
        self.retransmission = retransmission
        self.headerExtensions = headerExtensions
        self.remoteSSRCs = remoteSSRCs
        self.remoteRetransmissionPairs = remoteRetransmissionPairs
        self.remoteRIDs = remoteRIDs
        self.localStream = localStream
    }

    public struct HeaderExtension: Sendable, Equatable {
        public var id: UInt8
        public var uri: String

        public init(id: UInt8, uri: String) {
            self.id = id
            self.uri = uri
        }
    }

    public struct RetransmissionPair: Sendable, Equatable {
        public var media: UInt32
        public var rtx: UInt32

        public init(media: UInt32, rtx: UInt32) {
            self.media = media
            self.rtx = rtx
        }
    }
}

public struct SDPAnswer: Sendable {
    public var description: SessionDescription
    public var media: [NegotiatedMedia]
    /// The peer's ICE credentials and DTLS fingerprint, for the transport.
    public var remoteIceUsernameFragment: String
    public var remoteIcePassword: String
    public var remoteFingerprint: (algorithm: String, value: String)
    /// Whether Tally is the DTLS client (`a=setup:active`) or server (`passive`).
    public var dtlsClient: Bool

    public var text: String { SDPParser.serialize(description) }
}

/// Builds an ICE-lite answer to a browser's offer (RFC 8829 §5.3).
public enum SDPAnswerer {
    public static func answer(
        to offer: SessionDescription, transport: LocalTransportParameters, policy: CodecPolicy = .standard,
        sessionID: String, intent: (MediaDescription) -> MediaIntent
    ) throws(SDPError) -> SDPAnswer {
        let bundle = offer.bundleGroup
        guard !bundle.isEmpty else { throw .missing("a=group:BUNDLE (Tally carries all media on one transport)") }
        guard let first = offer.media.first(where: { !$0.isRejected }) else { throw .missing("media section") }
        guard let ufrag = offer.value("ice-ufrag", in: first), let password = offer.value("ice-pwd", in: first) else {
            throw .missing("a=ice-ufrag and a=ice-pwd")
        }
        guard let fingerprint = offer.fingerprint(for: first) else { throw .missing("a=fingerprint") }
        let setup = offer.value("setup", in: first) ?? "actpass"
        let dtlsClient = setup == "passive"

        var sections: [MediaDescription] = []
        var negotiated: [NegotiatedMedia] = []
        for offered in offer.media {
            guard let mid = offered.mid, bundle.contains(mid), !offered.isRejected,
                  let result = negotiate(offered, mid: mid, policy: policy, intent: intent(offered)) else {
                sections.append(MediaDescription(kind: offered.kind, port: 0, proto: offered.proto, formats: offered.formats,
                                                 attributes: offered.mid.map { [SDPAttribute("mid", $0)] } ?? []))
                continue
            }
            var section = result.section
            section.attributes.insert(contentsOf: [
                SDPAttribute("ice-ufrag", transport.iceUsernameFragment),
                SDPAttribute("ice-pwd", transport.icePassword),
                SDPAttribute("fingerprint", "sha-256 \(transport.fingerprintSHA256)"),
                SDPAttribute("setup", dtlsClient ? "active" : "passive"),
            ], at: 0)
            section.attributes += transport.candidates.map { SDPAttribute("candidate", $0) }
            section.attributes.append(SDPAttribute("end-of-candidates"))
            sections.append(section)
            negotiated.append(result.media)
        }
        guard !negotiated.isEmpty else { throw .missing("a media section Tally can accept") }

        var attributes = [
            SDPAttribute("group", (["BUNDLE"] + negotiated.map(\.mid)).joined(separator: " ")),
            SDPAttribute("ice-lite"),
            SDPAttribute("msid-semantic", " WMS *"),
        ]
        if offer.attribute("extmap-allow-mixed") != nil { attributes.insert(SDPAttribute("extmap-allow-mixed"), at: 1) }
        let answer = SessionDescription(
            origin: .init(sessionID: sessionID, sessionVersion: 1), attributes: attributes, media: sections)
        return SDPAnswer(description: answer, media: negotiated, remoteIceUsernameFragment: ufrag, remoteIcePassword: password,
                         remoteFingerprint: fingerprint, dtlsClient: dtlsClient)
    }

    private static func negotiate(_ offered: MediaDescription, mid: String, policy: CodecPolicy, intent: MediaIntent)
        -> (section: MediaDescription, media: NegotiatedMedia)? {
        let codecs = offered.codecs
        guard let kind = offered.mediaKind, let codec = policy.matchers(for: kind).lazy.compactMap({ matcher in codecs.first(where: matcher.matches) }).first else {
            return nil
        }
        let rtx = codecs.first { $0.isRetransmission && $0.parameter("apt") == String(codec.payloadType) }
        let sends = intent.send != nil && offered.direction.receives
        let receives = intent.receive && offered.direction.sends
        let direction = MediaDirection(sends: sends, receives: receives)
        var chosen = codec
        chosen.feedback = codec.feedback.filter(policy.feedback.contains)
        let extensions = offered.headerExtensions.filter { policy.headerExtensions.contains($0.uri) }

        var section = MediaDescription(kind: offered.kind, port: 9, proto: offered.proto,
                                       formats: [chosen.payloadType, rtx?.payloadType].compactMap { $0 }.map(String.init))
        section.attributes.append(SDPAttribute("mid", mid))
        section.attributes += extensions.map { SDPAttribute("extmap", "\($0.id) \($0.uri)") }
        section.attributes.append(SDPAttribute(direction.rawValue))
        let localStream = sends ? intent.send : nil
        if let localStream { section.attributes.append(SDPAttribute("msid", "\(localStream.streamID) \(localStream.trackID)")) }
        section.attributes.append(SDPAttribute("rtcp-mux"))
        if offered.has("rtcp-rsize") { section.attributes.append(SDPAttribute("rtcp-rsize")) }
        for entry in [chosen, rtx].compactMap({ $0 }) {
            let channels = entry.channels > 1 ? "/\(entry.channels)" : ""
            section.attributes.append(SDPAttribute("rtpmap", "\(entry.payloadType) \(entry.name)/\(entry.clockRate)\(channels)"))
            section.attributes += entry.feedback.filter(policy.feedback.contains).map { SDPAttribute("rtcp-fb", "\(entry.payloadType) \($0)") }
            if !entry.parameters.isEmpty {
                section.attributes.append(SDPAttribute("fmtp", "\(entry.payloadType) " + entry.parameters.map { "\($0.key)=\($0.value)" }.joined(separator: ";")))
            }
        }
        if let localStream {
            if let rtxSSRC = localStream.rtxSSRC, rtx != nil {
                section.attributes.append(SDPAttribute("ssrc-group", "FID \(localStream.ssrc) \(rtxSSRC)"))
            }
            for ssrc in [localStream.ssrc, rtx != nil ? localStream.rtxSSRC : nil].compactMap({ $0 }) {
                section.attributes.append(SDPAttribute("ssrc", "\(ssrc) cname:\(localStream.cname)"))
                section.attributes.append(SDPAttribute("ssrc", "\(ssrc) msid:\(localStream.streamID) \(localStream.trackID)"))
            }
        }
        let remoteRIDs = receives ? offered.simulcastSend : []
        if !remoteRIDs.isEmpty {
            section.attributes += remoteRIDs.map { SDPAttribute("rid", "\($0) recv") }
            section.attributes.append(SDPAttribute("simulcast", "recv " + remoteRIDs.joined(separator: ";")))
        }
        let media = NegotiatedMedia(
            mid: mid, kind: kind, direction: direction, codec: chosen, retransmission: rtx,
            headerExtensions: extensions.map { .init(id: $0.id, uri: $0.uri) },
            remoteSSRCs: receives ? offered.ssrcs : [],
            remoteRetransmissionPairs: receives ? offered.retransmissionPairs.map { .init(media: $0.media, rtx: $0.rtx) } : [],
            remoteRIDs: remoteRIDs, localStream: localStream)
        return (section, media)
    }
}
