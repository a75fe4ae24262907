import Foundation
import RelayWire
import SDP

/// What a player's node asks a publisher's node for (`POST /api/node/relays`, node token):
/// one participant's tracks, relayed under an id and a nonce the asking node chose.
public struct RelayRequest: Codable, Sendable {
    public var broadcastID: String
    public var participantID: String
    public var relayID: UInt32
    /// 16 bytes, base64: the salt of the relay's keys.
    public var nonce: String

    public init(broadcastID: String, participantID: String, relayID: UInt32, nonce: String) {
        self.broadcastID = broadcastID
        self.participantID = participantID
        self.relayID = relayID
        self.nonce = nonce
    }

    enum CodingKeys: String, CodingKey {
        case broadcastID = "broadcast_id"
        case participantID = "participant_id"
        case relayID = "relay_id"
        case nonce
    }

    /// The nonce's bytes, if it is 16 bytes of base64.
    public var nonceBytes: [UInt8]? {
        guard let data = Data(base64Encoded: nonce), data.count == RelayCipher.nonceSize else { return nil }
        return Array(data)
    }
}

/// The publisher's node's answer: its relay port and the participant's tracks as its router
/// holds them, so the asking node builds producers that read the same packets.
public struct RelayAnswer: Codable, Sendable {
    public var port: Int
    public var tracks: [RelayTrack]

    public init(port: Int, tracks: [RelayTrack]) {
        self.port = port
        self.tracks = tracks
    }
}

/// One track of a relayed participant: what a `Producer` needs to take its packets. Packets
/// cross the relay as the publisher sent them (retransmissions already unwrapped), so no
/// retransmission codec is described.
public struct RelayTrack: Codable, Sendable, Equatable {
    public var mid: String
    public var kind: MediaKind
    public var codec: Codec
    public var headerExtensions: [Extension]
    /// The publisher's simulcast layers, in the order it announced them (highest first).
    public var rids: [String]

    public struct Codec: Codable, Sendable, Equatable {
        public var payloadType: UInt8
        public var name: String
        public var clockRate: UInt32
        public var channels: Int
        public var parameters: [[String]]
        public var feedback: [String]

        enum CodingKeys: String, CodingKey {
            case payloadType = "payload_type"
            case clockRate = "clock_rate"
            case name, channels, parameters, feedback
        }
    }

    public struct Extension: Codable, Sendable, Equatable {
        public var id: UInt8
        public var uri: String
    }

    enum CodingKeys: String, CodingKey {
        case headerExtensions = "header_extensions"
        case mid, kind, codec, rids
    }

    public init(_ media: NegotiatedMedia) {
        mid = media.mid
        kind = media.kind
        codec = Codec(payloadType: media.codec.payloadType, name: media.codec.name, clockRate: media.codec.clockRate, channels: media.codec.channels,
                      parameters: media.codec.parameters.map { [$0.key, $0.value] }, feedback: media.codec.feedback)
        headerExtensions = media.headerExtensions.map { Extension(id: $0.id, uri: $0.uri) }
        rids = media.remoteRIDs
    }

    /// The track as the receiving node's producer takes it; nil for a description no
    /// producer could read (a layer count or codec parameter out of bounds).
    public var media: NegotiatedMedia? {
        guard rids.count <= 3, !mid.isEmpty, mid.utf8.count <= 32, codec.parameters.allSatisfy({ $0.count == 2 }),
              codec.clockRate > 0, headerExtensions.allSatisfy({ (1...255).contains($0.id) }) else { return nil }
        let rtpCodec = RTPCodec(payloadType: codec.payloadType, name: codec.name, clockRate: codec.clockRate, channels: codec.channels,
                                parameters: codec.parameters.map { (key: $0[0], value: $0[1]) }, feedback: codec.feedback)
        return NegotiatedMedia(mid: mid, kind: kind, direction: .recvonly, codec: rtpCodec, retransmission: nil,
                               headerExtensions: headerExtensions.map { NegotiatedMedia.HeaderExtension(id: $0.id, uri: $0.uri) },
                               remoteSSRCs: [], remoteRetransmissionPairs: [], remoteRIDs: rids, localStream: nil)
    }
}
