/// Which way media flows in a section (RFC 8866 §6.7).
public enum MediaDirection: String, Sendable, CaseIterable {
    case sendrecv, sendonly, recvonly, inactive

    public var sends: Bool { self == .sendrecv || self == .sendonly }
    public var receives: Bool { self == .sendrecv || self == .recvonly }

    public init(sends: Bool, receives: Bool) {
        switch (sends, receives) {
        case (true, true): self = .sendrecv
        case (true, false): self = .sendonly
        case (false, true): self = .recvonly
        case (false, false): self = .inactive
        }
    }

    /// The direction a peer sees for the same media.
    public var reversed: MediaDirection { MediaDirection(sends: receives, receives: sends) }
}

/// A payload type with its rtpmap, fmtp and rtcp-fb lines gathered.
public struct RTPCodec: Sendable, Equatable {
    public var payloadType: UInt8
    /// As in rtpmap: opus, VP8, VP9, H264, rtx, red, ulpfec...
    public var name: String
    public var clockRate: UInt32
    public var channels: Int
    /// fmtp parameters in their order, e.g. [("apt", "96")] or [("packetization-mode", "1"), ...].
    public var parameters: [(key: String, value: String)]
    /// rtcp-fb values: "nack", "nack pli", "ccm fir", "goog-remb", "transport-cc".
    public var feedback: [String]

    public init(payloadType: UInt8, name: String, clockRate: UInt32, channels: Int = 1, parameters: [(key: String, value: String)] = [], feedback: [String] = []) {
        self.payloadType = payloadType
        self.name = name
        self.clockRate = clockRate
        self.channels = channels
        self.parameters = parameters
        self.feedback = feedback
    }

    public func parameter(_ key: String) -> String? {
        parameters.first { $0.key.lowercased() == key.lowercased() }?.value
    }

    public var isRetransmission: Bool { name.lowercased() == "rtx" }

    public static func == (lhs: RTPCodec, rhs: RTPCodec) -> Bool {
        lhs.payloadType == rhs.payloadType && lhs.name == rhs.name && lhs.clockRate == rhs.clockRate && lhs.channels == rhs.channels
            && lhs.parameters.map(\.key) == rhs.parameters.map(\.key) && lhs.parameters.map(\.value) == rhs.parameters.map(\.value)
            && lhs.feedback == rhs.feedback
    }
}

/// `a=rid` (RFC 8851): one simulcast layer.
public struct RIDDescription: Sendable, Equatable {
    public var id: String
    /// send or recv, from the describing side's point of view.
    public var direction: String
    public var restrictions: String?

    public init(id: String, direction: String, restrictions: String? = nil) {
        self.id = id
        self.direction = direction
        self.restrictions = restrictions
    }
}

/// `a=ssrc:<ssrc> <attribute>:<value>` lines for one SSRC.
public struct SSRCDescription: Sendable, Equatable {
    public var ssrc: UInt32
    public var cname: String?
    public var msid: String?

    public init(ssrc: UInt32, cname: String? = nil, msid: String? = nil) {
        self.ssrc = ssrc
        self.cname = cname
        self.msid = msid
    }
}

extension MediaDescription {
    public func attribute(_ name: String) -> SDPAttribute? {
        attributes.first { $0.name == name }
    }

    public func values(_ name: String) -> [String] {
        attributes.filter { $0.name == name }.compactMap(\.value)
    }

    public func has(_ name: String) -> Bool { attribute(name) != nil }

    public var mid: String? { attribute("mid")?.value }

    public var direction: MediaDirection {
        MediaDirection.allCases.first { has($0.rawValue) } ?? .sendrecv
    }

    public var isRejected: Bool { port == 0 }

    /// Codecs in the order of the m= line, with their fmtp and rtcp-fb gathered.
    public var codecs: [RTPCodec] {
        var byType: [UInt8: RTPCodec] = [:]
        for value in values("rtpmap") {
            let parts = value.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let payloadType = UInt8(parts[0]), payloadType < 128 else { continue }
            let encoding = parts[1].split(separator: "/")
            guard encoding.count >= 2, let rate = UInt32(encoding[1]) else { continue }
            let channels = encoding.count > 2 ? Int(encoding[2]) ?? 1 : 1
            byType[payloadType] = RTPCodec(payloadType: payloadType, name: String(encoding[0]), clockRate: rate, channels: channels)
        }
        for value in values("fmtp") {
            let parts = value.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let payloadType = UInt8(parts[0]), byType[payloadType] != nil else { continue }
            byType[payloadType]!.parameters = parts[1].split(separator: ";").compactMap { pair in
                let keyValue = pair.trimmingSpaces.split(separator: "=", maxSplits: 1)
                guard let key = keyValue.first, !key.isEmpty else { return nil }
                return (String(key), keyValue.count > 1 ? String(keyValue[1]) : "")
            }
        }
        for value in values("rtcp-fb") {
            let parts = value.split(separator: " ", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let feedback = String(parts[1]).trimmingSpaces
            if parts[0] == "*" {
                for key in byType.keys { byType[key]!.feedback.append(feedback) }
            } else if let payloadType = UInt8(parts[0]), byType[payloadType] != nil {
                byType[payloadType]!.feedback.append(feedback)
            }
        }
        return formats.compactMap { UInt8($0).flatMap { byType[$0] } }
    }

    /// `a=extmap:<id>[/<direction>] <uri>` as id → URI.
    public var headerExtensions: [(id: UInt8, uri: String)] {
        values("extmap").compactMap { value in
            let parts = value.split(separator: " ")
            guard parts.count >= 2, let idText = parts[0].split(separator: "/", omittingEmptySubsequences: false).first, let id = UInt8(idText), (1...255).contains(id) else { return nil }
            return (id, String(parts[1]))
        }
    }

    public var ssrcs: [SSRCDescription] {
        var order: [UInt32] = []
        var byID: [UInt32: SSRCDescription] = [:]
        for value in values("ssrc") {
            let parts = value.split(separator: " ", maxSplits: 1)
            guard let first = parts.first, let ssrc = UInt32(first) else { continue }
            if byID[ssrc] == nil {
                order.append(ssrc)
                byID[ssrc] = SSRCDescription(ssrc: ssrc)
            }
            guard parts.count == 2 else { continue }
            let attribute = parts[1].split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let attributeValue = attribute.count > 1 ? String(attribute[1]) : nil
            switch attribute.first ?? "" {
            case "cname": byID[ssrc]!.cname = attributeValue
            case "msid": byID[ssrc]!.msid = attributeValue
            default: break
            }
        }
        return order.compactMap { byID[$0] }
    }

    /// `a=ssrc-group:FID <media> <rtx>` pairs (RFC 5576, RFC 4588).
    public var retransmissionPairs: [(media: UInt32, rtx: UInt32)] {
        values("ssrc-group").compactMap { value in
            let parts = value.split(separator: " ")
            guard parts.count == 3, parts[0] == "FID", let media = UInt32(parts[1]), let rtx = UInt32(parts[2]) else { return nil }
            return (media, rtx)
        }
    }

    public var rids: [RIDDescription] {
        values("rid").compactMap { value in
            let parts = value.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, parts[1] == "send" || parts[1] == "recv" else { return nil }
            return RIDDescription(id: String(parts[0]), direction: String(parts[1]), restrictions: parts.count > 2 ? String(parts[2]) : nil)
        }
    }

    /// `a=simulcast:send h;m;l` (RFC 8853): the rids a side sends, in order, paused ones
    /// (prefixed `~`) included; alternatives after a comma are ignored beyond the first.
    public var simulcastSend: [String] { simulcast(direction: "send") }
    public var simulcastReceive: [String] { simulcast(direction: "recv") }

    private func simulcast(direction: String) -> [String] {
        guard let value = attribute("simulcast")?.value else { return [] }
        let fields = value.split(separator: " ")
        var index = 0
        while index + 1 < fields.count {
            if fields[index] == direction {
                return fields[index + 1].split(separator: ";").compactMap { layer in
                    layer.split(separator: ",").first.map { String($0.hasPrefix("~") ? $0.dropFirst() : $0) }
                }
            }
            index += 2
        }
        return []
    }
}

extension SessionDescription {
    public func attribute(_ name: String) -> SDPAttribute? {
        attributes.first { $0.name == name }
    }

    /// The mids of `a=group:BUNDLE` (RFC 8843).
    public var bundleGroup: [String] {
        guard let value = attributes.first(where: { $0.name == "group" && $0.value?.hasPrefix("BUNDLE") == true })?.value else { return [] }
        return value.split(separator: " ").dropFirst().map(String.init)
    }

    /// A media-level attribute, or the session-level one browsers may use instead.
    public func value(_ name: String, in section: MediaDescription) -> String? {
        section.attribute(name)?.value ?? attribute(name)?.value
    }

    /// `a=fingerprint:<hash> <hex>` of a section, falling back to the session level.
    public func fingerprint(for section: MediaDescription) -> (algorithm: String, value: String)? {
        guard let value = value("fingerprint", in: section) else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        return (parts[0].lowercased(), parts[1].uppercased())
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
