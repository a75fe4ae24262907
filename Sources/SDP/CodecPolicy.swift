/// Which codecs, feedback and header extensions Tally accepts, in preference order.
public struct CodecPolicy: Sendable {
    /// Matches offered codecs by name, clock rate and the fmtp parameters that change the
    /// bitstream (packetization mode, profile); order is preference.
    public struct Matcher: Sendable {
        public var name: String
        public var clockRate: UInt32
        public var channels: Int?
        public var requiredParameters: [String: String]
        /// For H.264: accepted profile_idc + constraint bytes of profile-level-id (first 4 hex digits).
        public var profilePrefixes: [String]?

        public init(name: String, clockRate: UInt32, channels: Int? = nil, requiredParameters: [String: String] = [:], profilePrefixes: [String]? = nil) {
            self.name = name
            self.clockRate = clockRate
            self.channels = channels
            self.requiredParameters = requiredParameters
            self.profilePrefixes = profilePrefixes
        }

        public func matches(_ codec: RTPCodec) -> Bool {
            guard codec.name.lowercased() == name.lowercased(), codec.clockRate == clockRate else { return false }
            if let channels, codec.channels != channels { return false }
            for (key, value) in requiredParameters where (codec.parameter(key) ?? defaultParameter(key)) != value { return false }
            if let profilePrefixes {
                let profile = (codec.parameter("profile-level-id") ?? "42001f").lowercased()
                return profilePrefixes.contains { profile.hasPrefix($0) }
            }
            return true
        }

        /// RFC 6184 and the VP9 payload format define what an absent parameter means.
        private func defaultParameter(_ key: String) -> String? {
            switch key {
            case "packetization-mode", "profile-id": "0"
            default: nil
            }
        }

        public static let opus = Matcher(name: "opus", clockRate: 48000, channels: 2)
        public static let vp8 = Matcher(name: "VP8", clockRate: 90000)
        public static let vp9 = Matcher(name: "VP9", clockRate: 90000, requiredParameters: ["profile-id": "0"])
        /// Constrained baseline and main, non-interleaved: what browsers and x264 share.
        public static let h264 = Matcher(name: "H264", clockRate: 90000, requiredParameters: ["packetization-mode": "1"],
                                         profilePrefixes: ["42e0", "4200", "4d00", "640c"])
    }

    public var audio: [Matcher]
    public var video: [Matcher]
    public var feedback: Set<String>
    public var headerExtensions: Set<String>

    public init(audio: [Matcher], video: [Matcher], feedback: Set<String>, headerExtensions: Set<String>) {
        self.audio = audio
        self.video = video
        self.feedback = feedback
        self.headerExtensions = headerExtensions
    }

    public static let standard = CodecPolicy(
        audio: [.opus],
        video: [.vp8, .vp9, .h264],
        feedback: ["nack", "nack pli", "ccm fir", "goog-remb", "transport-cc"],
        headerExtensions: [
            "urn:ietf:params:rtp-hdrext:sdes:mid",
            "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
            "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
            "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        ])

    public func matchers(for kind: MediaKind) -> [Matcher] {
        switch kind {
        case .audio: audio
        case .video: video
        }
    }
}

extension CodecPolicy.Matcher {
    /// Accepts exactly what `codec` is, so a subscriber gets the publisher's bitstream as it is.
    public init(matching codec: RTPCodec) {
        var required: [String: String] = [:]
        var profiles: [String]?
        switch codec.name.uppercased() {
        case "H264":
            required["packetization-mode"] = codec.parameter("packetization-mode") ?? "0"
            profiles = [String((codec.parameter("profile-level-id") ?? "42001f").lowercased().prefix(4))]
        case "VP9":
            required["profile-id"] = codec.parameter("profile-id") ?? "0"
        default:
            break
        }
        self.init(name: codec.name, clockRate: codec.clockRate, channels: codec.channels > 1 ? codec.channels : nil,
                  requiredParameters: required, profilePrefixes: profiles)
    }
}
