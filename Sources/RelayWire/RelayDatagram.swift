import Crypto
import Foundation

/// Why a relay datagram was refused.
public enum RelayError: Error, Equatable, CustomStringConvertible {
    case tooShort(Int)
    case notARelayDatagram
    case unknownKind(UInt8)
    case authenticationFailed
    case replayed
    case tooLarge(Int)

    public var description: String {
        switch self {
        case .tooShort(let count): "a relay datagram has at least \(RelayHeader.size + RelayCipher.tagSize) bytes; this one has \(count)"
        case .notARelayDatagram: "not a Tally relay datagram (wrong magic byte or version)"
        case .unknownKind(let kind): "unknown relay datagram kind \(kind)"
        case .authenticationFailed: "the datagram does not authenticate under the relay's key"
        case .replayed: "the datagram's counter was seen before or is too old"
        case .tooLarge(let count): "a relay payload may be at most \(RelayHeader.maxPayload) bytes; this one has \(count)"
        }
    }
}

/// What a relay datagram carries.
public enum RelayKind: UInt8, Sendable {
    /// One RTP packet of a track's layer, publisher's node → player's node.
    case media = 1
    /// An RTCP compound (NACK, PLI), player's node → publisher's node.
    case feedback = 2
    /// "Still here", player's node → publisher's node: the publisher's node learns (and keeps)
    /// where to send from it, and drops a relay that stops sending it. Its payload says which
    /// layers of each simulcast track the player's node needs (`RelayLayers`); sent every
    /// second and at once when that changes, so a lost one is soon made good.
    case keepalive = 3
    /// The player's node no longer needs the relay.
    case close = 4
}

/// The clear header of every relay datagram (16 bytes), authenticated as the AEAD's
/// associated data: magic and version, kind, track, layer, the relay's id, and the sender's
/// counter, which is also the nonce, so no two datagrams one key seals share one.
public struct RelayHeader: Equatable, Sendable {
    public static let size = 16
    static let magic: UInt8 = 0xA7
    static let version: UInt8 = 1
    /// Larger than any RTP packet a publisher sends (1200-byte MTUs) or an RTCP compound.
    public static let maxPayload = 1500

    public var kind: RelayKind
    public var track: UInt8
    public var layer: UInt8
    public var relayID: UInt32
    public var counter: UInt64

    public init(kind: RelayKind, track: UInt8 = 0, layer: UInt8 = 0, relayID: UInt32, counter: UInt64) {
        self.kind = kind
        self.track = track
        self.layer = layer
        self.relayID = relayID
        self.counter = counter
    }

    /// Reads a header without checking the datagram's authenticity (that needs the key).
    public static func parse(_ bytes: some Collection<UInt8>) throws(RelayError) -> RelayHeader {
        guard bytes.count >= size + RelayCipher.tagSize else { throw .tooShort(bytes.count) }
        let head = Array(bytes.prefix(size))
        guard head[0] == magic, head[1] >> 4 == version else { throw .notARelayDatagram }
        guard let kind = RelayKind(rawValue: head[1] & 0x0F) else { throw .unknownKind(head[1] & 0x0F) }
        let relayID = head[4..<8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let counter = head[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return RelayHeader(kind: kind, track: head[2], layer: head[3], relayID: relayID, counter: counter)
    }

    public var bytes: [UInt8] {
        var out: [UInt8] = [Self.magic, Self.version << 4 | kind.rawValue, track, layer]
        out.reserveCapacity(Self.size)
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: relayID >> UInt32(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: counter >> UInt64(shift))) }
        return out
    }

    /// The AEAD nonce within a serialized header: the relay's id and the counter, unique per key.
    static let nonceRange = 4..<16
}

/// Which way a relay key seals: the media from the publisher's node, or the feedback and
/// keepalives from the player's node. Each direction has its own key and counter.
public enum RelayDirection: Sendable {
    case towardPlayer
    case towardPublisher

    var label: String {
        switch self {
        case .towardPlayer: "tally relay v1 media"
        case .towardPublisher: "tally relay v1 feedback"
        }
    }
}

/// One relay's keys, derived on both nodes from the deployment's shared relay secret and the
/// nonce the player's node chose for it: nothing secret crosses the network, and a relay's
/// key opens nothing else. AES-128-GCM seals every datagram; a sliding window refuses replays.
///
/// Not thread-safe: one per relay end, on its loop.
public struct RelayCipher {
    public static let tagSize = 16
    public static let nonceSize = 16
    private let sealKey: SymmetricKey
    private let openKey: SymmetricKey
    private var sent: UInt64 = 0
    private var window = ReplayWindow()

    /// `sending`: the direction this end seals in (it opens the other).
    public init(secret: SymmetricKey, nonce: [UInt8], sending: RelayDirection) {
        func key(_ direction: RelayDirection) -> SymmetricKey {
            HKDF<SHA256>.deriveKey(inputKeyMaterial: secret, salt: nonce, info: Array(direction.label.utf8), outputByteCount: 16)
        }
        sealKey = key(sending)
        openKey = key(sending == .towardPlayer ? .towardPublisher : .towardPlayer)
    }

    /// A datagram: header, then `payload` sealed with the header as associated data.
    public mutating func seal(kind: RelayKind, track: UInt8 = 0, layer: UInt8 = 0, relayID: UInt32, payload: some DataProtocol) throws -> [UInt8] {
        guard payload.count <= RelayHeader.maxPayload else { throw RelayError.tooLarge(payload.count) }
        sent += 1
        let header = RelayHeader(kind: kind, track: track, layer: layer, relayID: relayID, counter: sent)
        let head = header.bytes
        let box = try AES.GCM.seal(payload, using: sealKey, nonce: AES.GCM.Nonce(data: head[RelayHeader.nonceRange]), authenticating: head)
        var out = head
        out.reserveCapacity(head.count + box.ciphertext.count + Self.tagSize)
        out.append(contentsOf: box.ciphertext)
        out.append(contentsOf: box.tag)
        return out
    }

    /// The header and clear payload of a datagram sealed by the other end; refuses forgeries,
    /// datagrams of another relay and replays.
    public mutating func open(_ datagram: [UInt8], relayID: UInt32) throws(RelayError) -> (header: RelayHeader, payload: [UInt8]) {
        let header = try RelayHeader.parse(datagram)
        guard header.relayID == relayID else { throw .authenticationFailed }
        guard window.mayAccept(header.counter) else { throw .replayed }
        let body = datagram[RelayHeader.size..<(datagram.count - Self.tagSize)]
        let tag = datagram[(datagram.count - Self.tagSize)...]
        let payload: [UInt8]
        do {
            let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: datagram[RelayHeader.nonceRange]), ciphertext: body, tag: tag)
            payload = Array(try AES.GCM.open(box, using: openKey, authenticating: datagram[0..<RelayHeader.size]))
        } catch {
            throw .authenticationFailed
        }
        window.accept(header.counter)
        return (header, payload)
    }
}

/// The last 128 counters seen (RFC 3711 §3.3.2's idea): a counter is taken once, and one more
/// than 128 behind the highest is refused as too old.
struct ReplayWindow {
    private(set) var highest: UInt64 = 0
    /// Bit i: counter `highest - i` was seen.
    private var seen: (UInt64, UInt64) = (0, 0)
    static let size: UInt64 = 128

    func mayAccept(_ counter: UInt64) -> Bool {
        guard counter > 0 else { return false }
        if counter > highest { return true }
        let age = highest - counter
        guard age < Self.size else { return false }
        return !bit(age)
    }

    mutating func accept(_ counter: UInt64) {
        if counter > highest {
            let shift = counter - highest
            if shift >= Self.size {
                seen = (0, 0)
            } else if shift >= 64 {
                seen = (0, seen.0 << (shift - 64))
            } else if shift > 0 {
                seen = (seen.0 << shift, seen.1 << shift | seen.0 >> (64 - shift))
            }
            highest = counter
            seen.0 |= 1
        } else {
            let age = highest - counter
            if age < 64 { seen.0 |= 1 << age } else { seen.1 |= 1 << (age - 64) }
        }
    }

    private func bit(_ age: UInt64) -> Bool {
        age < 64 ? seen.0 & (1 << age) != 0 : seen.1 & (1 << (age - 64)) != 0
    }
}

/// The layers a player's node needs of each simulcast track, as a keepalive carries them:
/// pairs of (track index, one bit per layer, lowest first). A track left out needs every layer.
public enum RelayLayers {
    public static func encode(_ masks: [UInt8: UInt8]) -> [UInt8] {
        masks.sorted { $0.key < $1.key }.flatMap { [$0.key, $0.value] }
    }

    /// The masks in `payload`; a trailing odd byte is ignored.
    public static func decode(_ payload: [UInt8]) -> [UInt8: UInt8] {
        var masks: [UInt8: UInt8] = [:]
        for index in stride(from: 0, to: payload.count - 1, by: 2) { masks[payload[index]] = payload[index + 1] }
        return masks
    }

    /// The mask for layers to send, lowest first (at most eight).
    public static func mask(_ layers: [Bool]) -> UInt8 {
        layers.prefix(8).enumerated().reduce(0) { $1.element ? $0 | (1 << UInt8($1.offset)) : $0 }
    }
}
