import Crypto
import Foundation
import STUN

/// Who a TURN client is to the server: its address on the UDP port, or one TCP/TLS connection.
public enum TURNClientID: Hashable, Sendable, CustomStringConvertible {
    case udp(TransportAddress)
    case stream(Int)

    /// ChannelData over a stream is padded to four bytes (RFC 8656 §12.5).
    var isStream: Bool { if case .stream = self { true } else { false } }

    public var description: String {
        switch self {
        case .udp(let address): "udp \(address)"
        case .stream(let id): "stream #\(id)"
        }
    }
}

/// Where a relay may send: only to Tally's own media port on Tally's own addresses, so the
/// server is never an open relay. `target` is where datagrams for a permitted peer actually
/// go: the peer itself when it is an address of this host, else (a public address the host
/// sits behind) the media socket's own address.
public struct TURNRelayPolicy: Sendable {
    public let ownAddresses: Set<[UInt8]>
    public let localAddresses: Set<[UInt8]>
    public let mediaPort: UInt16
    /// The media socket's address for peers that are not local (NAT'd public addresses).
    public let internalIPv4: [UInt8]

    public init(ownAddresses: Set<[UInt8]>, localAddresses: Set<[UInt8]>, mediaPort: UInt16, internalIPv4: [UInt8] = [127, 0, 0, 1]) {
        self.ownAddresses = ownAddresses.union(localAddresses)
        self.localAddresses = localAddresses
        self.mediaPort = mediaPort
        self.internalIPv4 = internalIPv4
    }

    public func permits(ip: [UInt8]) -> Bool { ownAddresses.contains(ip) }

    public func target(for peer: TransportAddress) -> TransportAddress? {
        guard permits(ip: peer.ip), peer.port == mediaPort else { return nil }
        if localAddresses.contains(peer.ip) || !peer.isIPv4 { return peer }
        return TransportAddress(ip: internalIPv4, port: peer.port)
    }
}

/// The TURN server (RFC 8656) as a state machine: bytes from clients and from relays in,
/// bytes to send out; the caller owns the sockets, binds a relay when asked, and calls
/// `expire` every few seconds. Long-term credentials (RFC 8489 §9.2) in the TURN REST style
/// (`TURNCredentials`), stateless nonces, UDP relays only.
///
/// Not thread-safe: one event loop drives it.
public final class TURNServerCore {
    public enum Output: Equatable {
        /// Bytes for a client.
        case reply(TURNClientID, [UInt8])
        /// Bytes out of an allocation's relay socket, to `to`.
        case relay(allocation: Int, to: TransportAddress, [UInt8])
        /// Bind a relay socket for an allocation, then call `allocated` or `allocationFailed`.
        case openRelay(allocation: Int)
        /// Close an allocation's relay socket; a stream client's connection goes with it (a
        /// TLS client that sent close_notify otherwise waits for ours).
        case closeRelay(allocation: Int, client: TURNClientID?)
    }

    public struct Settings: Sendable {
        public var realm = "tally"
        public var defaultLifetime: TimeInterval = 600
        public var maxLifetime: TimeInterval = 3600
        public var permissionLifetime: TimeInterval = 300
        public var channelLifetime: TimeInterval = 600
        public var nonceLifetime: TimeInterval = 600
        /// Allocations this server holds, and one identity holds.
        public var maxAllocations = 2000
        /// A host's studio: a publishing connection and one per other participant, each
        /// allocating on up to three TURN URLs.
        public var maxAllocationsPerIdentity = 100
        public init() {}
    }

    static let allocate: UInt16 = 0x003, refresh: UInt16 = 0x004, send: UInt16 = 0x006, dataMethod: UInt16 = 0x007
    static let createPermission: UInt16 = 0x008, channelBind: UInt16 = 0x009
    static let knownAttributes: Set<STUNAttributeType> = [
        .channelNumber, .lifetime, .xorPeerAddress, .data, .requestedTransport, .dontFragment, .requestedAddressFamily, .evenPort,
    ]

    private final class Allocation {
        let id: Int
        let client: TURNClientID
        let identity: String
        let username: String
        let key: [UInt8]
        var relayed: TransportAddress?
        var expires: Date
        var permissions: [[UInt8]: Date] = [:]
        var channels: [UInt16: (peer: TransportAddress, expires: Date)] = [:]
        var channelByPeer: [TransportAddress: UInt16] = [:]
        /// Where each peer's datagrams really go, and back.
        var peerByTarget: [TransportAddress: TransportAddress] = [:]
        /// The Allocate request that waits for its relay socket.
        var pending: (transactionID: STUNTransactionID, mapped: TransportAddress?)?

        init(id: Int, client: TURNClientID, identity: String, username: String, key: [UInt8], expires: Date) {
            self.id = id
            self.client = client
            self.identity = identity
            self.username = username
            self.key = key
            self.expires = expires
        }
    }

    public let settings: Settings
    private let credentials: TURNCredentials
    private let policy: TURNRelayPolicy
    private let nonceKey = SymmetricKey(size: .bits256)
    private var allocations: [Int: Allocation] = [:]
    private var allocationByClient: [TURNClientID: Int] = [:]
    private var nextID = 1

    public init(settings: Settings = Settings(), credentials: TURNCredentials, policy: TURNRelayPolicy) {
        self.settings = settings
        self.credentials = credentials
        self.policy = policy
    }

    public var allocationCount: Int { allocations.count }

    // MARK: From clients

    /// `mapped`: the client's address as this server sees it (XOR-MAPPED-ADDRESS).
    public func receive(_ bytes: [UInt8], from client: TURNClientID, mapped: TransportAddress?, now: Date) -> [Output] {
        guard let first = bytes.first else { return [] }
        if first & 0xC0 == 0x40 { return channelData(bytes, from: client) }
        guard let received = try? STUNCodec.parse(bytes) else { return [] }
        let message = received.message
        switch (message.type.method, message.type.messageClass) {
        case (Self.send, .indication):
            return sendIndication(message, from: client)
        case (Self.allocate, .request), (Self.refresh, .request), (Self.createPermission, .request), (Self.channelBind, .request):
            return request(received, from: client, mapped: mapped, now: now)
        case (0x001, .request):
            // A plain STUN binding: the client's address, which a client may ask before allocating.
            let reply = STUNMessage(type: .bindingSuccess, transactionID: message.transactionID,
                                    attributes: mapped.map { [.xorMappedAddress($0, transactionID: message.transactionID)] } ?? [])
            return [.reply(client, STUNCodec.encode(reply))]
        default:
            return []
        }
    }

    private func request(_ received: ReceivedSTUNMessage, from client: TURNClientID, mapped: TransportAddress?, now: Date) -> [Output] {
        let message = received.message
        let unknown = message.unknownComprehensionRequired(alsoKnown: Self.knownAttributes)
        if !unknown.isEmpty {
            return [.reply(client, error(message, 420, "Unknown Attribute", extra: [.unknownAttributes(unknown)]))]
        }
        // Long-term credentials: a first request without them learns the realm and a nonce.
        guard received.hasIntegrity, let username = message.username,
              let nonce = message.attribute(.nonce).map({ String(decoding: $0.value, as: UTF8.self) }) else {
            return [.reply(client, challenge(message, 401, "Unauthorized", now: now))]
        }
        guard isFresh(nonce: nonce, now: now) else { return [.reply(client, challenge(message, 438, "Stale Nonce", now: now))] }
        guard let identity = credentials.identity(of: username, now: now) else {
            return [.reply(client, challenge(message, 401, "Unauthorized", now: now))]
        }
        let key = STUNCodec.longTermKey(username: username, realm: settings.realm, password: credentials.password(for: username))
        guard (try? received.verifyIntegrity(key: key)) != nil else { return [.reply(client, challenge(message, 401, "Unauthorized", now: now))] }

        if message.type.method == Self.allocate {
            return allocateRequest(message, client: client, mapped: mapped, identity: identity, username: username, key: key, now: now)
        }
        guard let id = allocationByClient[client], let allocation = allocations[id], allocation.relayed != nil else {
            return [.reply(client, error(message, 437, "Allocation Mismatch", key: key))]
        }
        guard allocation.username == username else { return [.reply(client, error(message, 441, "Wrong Credentials", key: key))] }
        switch message.type.method {
        case Self.refresh:
            let asked = message.attribute(.lifetime).flatMap { $0.value.count == 4 ? TimeInterval(UInt32(bigEndianBytes: $0.value)) : nil }
            if asked == 0 {
                return [.reply(client, success(message, [.lifetime(0)], key: key))] + remove(allocation)
            }
            let lifetime = min(settings.maxLifetime, asked ?? settings.defaultLifetime)
            allocation.expires = now.addingTimeInterval(lifetime)
            return [.reply(client, success(message, [.lifetime(UInt32(lifetime))], key: key))]
        case Self.createPermission:
            let peers = message.xorAddresses(.xorPeerAddress)
            guard !peers.isEmpty, !peers.contains(where: { $0 == nil }) else { return [.reply(client, error(message, 400, "Bad Request", key: key))] }
            let addresses = peers.compactMap { $0 }
            guard addresses.allSatisfy({ $0.isIPv4 == allocation.relayed!.isIPv4 }) else {
                return [.reply(client, error(message, 443, "Peer Address Family Mismatch", key: key))]
            }
            guard addresses.allSatisfy({ policy.permits(ip: $0.ip) }) else { return [.reply(client, error(message, 403, "Forbidden", key: key))] }
            for peer in addresses { allocation.permissions[peer.ip] = now.addingTimeInterval(settings.permissionLifetime) }
            return [.reply(client, success(message, [], key: key))]
        default:
            return channelBindRequest(message, allocation: allocation, key: key, now: now)
        }
    }

    private func allocateRequest(_ message: STUNMessage, client: TURNClientID, mapped: TransportAddress?, identity: String, username: String,
                                 key: [UInt8], now: Date) -> [Output] {
        if let existing = allocationByClient[client].flatMap({ allocations[$0] }) {
            // A retransmitted Allocate while the relay is being bound is answered once it is.
            if existing.pending?.transactionID == message.transactionID { return [] }
            return [.reply(client, error(message, 437, "Allocation Mismatch", key: key))]
        }
        guard let transport = message.attribute(.requestedTransport)?.value, transport.count == 4 else {
            return [.reply(client, error(message, 400, "Bad Request", key: key))]
        }
        guard transport[0] == 17 else { return [.reply(client, error(message, 442, "Unsupported Transport Protocol", key: key))] }
        if let family = message.attribute(.requestedAddressFamily)?.value, family.first != 0x01 {
            return [.reply(client, error(message, 440, "Address Family not Supported", key: key))]
        }
        guard message.attribute(.reservationToken) == nil, message.attribute(.evenPort) == nil else {
            return [.reply(client, error(message, 508, "Insufficient Capacity", key: key))]
        }
        let held = allocations.values.filter { $0.identity == identity }.count
        guard allocations.count < settings.maxAllocations, held < settings.maxAllocationsPerIdentity else {
            return [.reply(client, error(message, 486, "Allocation Quota Reached", key: key))]
        }
        let asked = message.attribute(.lifetime).flatMap { $0.value.count == 4 ? TimeInterval(UInt32(bigEndianBytes: $0.value)) : nil }
        let lifetime = min(settings.maxLifetime, max(settings.defaultLifetime, asked ?? 0))
        let allocation = Allocation(id: nextID, client: client, identity: identity, username: username, key: key, expires: now.addingTimeInterval(lifetime))
        nextID += 1
        allocation.pending = (message.transactionID, mapped)
        allocations[allocation.id] = allocation
        allocationByClient[client] = allocation.id
        return [.openRelay(allocation: allocation.id)]
    }

    /// The relay socket for `allocation` is bound at `relayed`: the Allocate succeeds.
    public func allocated(_ id: Int, relayed: TransportAddress, now: Date) -> [Output] {
        guard let allocation = allocations[id], let pending = allocation.pending else { return [.closeRelay(allocation: id, client: nil)] }
        allocation.pending = nil
        allocation.relayed = relayed
        var attributes: [STUNAttribute] = [.xorAddress(.xorRelayedAddress, relayed, transactionID: pending.transactionID),
                                           .lifetime(UInt32(max(0, allocation.expires.timeIntervalSince(now))))]
        if let mapped = pending.mapped { attributes.append(.xorMappedAddress(mapped, transactionID: pending.transactionID)) }
        let reply = STUNMessage(type: STUNMessageType(method: Self.allocate, messageClass: .successResponse), transactionID: pending.transactionID,
                                attributes: attributes)
        return [.reply(allocation.client, STUNCodec.encode(reply, integrityKey: allocation.key))]
    }

    /// No relay socket could be bound.
    public func allocationFailed(_ id: Int) -> [Output] {
        guard let allocation = allocations[id], let pending = allocation.pending else { return [] }
        let reply = STUNMessage(type: STUNMessageType(method: Self.allocate, messageClass: .errorResponse), transactionID: pending.transactionID,
                                attributes: [.errorCode(508, reason: "Insufficient Capacity")])
        forget(allocation)
        return [.reply(allocation.client, STUNCodec.encode(reply, integrityKey: allocation.key))]
    }

    private func channelBindRequest(_ message: STUNMessage, allocation: Allocation, key: [UInt8], now: Date) -> [Output] {
        guard let value = message.attribute(.channelNumber)?.value, value.count == 4, let peer = message.xorAddress(.xorPeerAddress) else {
            return [.reply(allocation.client, error(message, 400, "Bad Request", key: key))]
        }
        let channel = UInt16(bigEndianBytes: value[0..<2])
        guard (0x4000...0x4FFF).contains(channel) else { return [.reply(allocation.client, error(message, 400, "Bad Request", key: key))] }
        guard peer.isIPv4 == allocation.relayed!.isIPv4 else {
            return [.reply(allocation.client, error(message, 443, "Peer Address Family Mismatch", key: key))]
        }
        guard policy.permits(ip: peer.ip) else { return [.reply(allocation.client, error(message, 403, "Forbidden", key: key))] }
        // A channel stays with its peer, and a peer with its channel, while bound.
        if let bound = allocation.channels[channel], bound.peer != peer { return [.reply(allocation.client, error(message, 400, "Bad Request", key: key))] }
        if let other = allocation.channelByPeer[peer], other != channel { return [.reply(allocation.client, error(message, 400, "Bad Request", key: key))] }
        allocation.channels[channel] = (peer, now.addingTimeInterval(settings.channelLifetime))
        allocation.channelByPeer[peer] = channel
        allocation.permissions[peer.ip] = now.addingTimeInterval(settings.permissionLifetime)
        return [.reply(allocation.client, success(message, [], key: key))]
    }

    private func sendIndication(_ message: STUNMessage, from client: TURNClientID) -> [Output] {
        guard let allocation = allocationByClient[client].flatMap({ allocations[$0] }), allocation.relayed != nil,
              let peer = message.xorAddress(.xorPeerAddress), let data = message.attribute(.data)?.value,
              allocation.permissions[peer.ip] != nil else { return [] }
        return relay(data, from: allocation, to: peer)
    }

    private func channelData(_ bytes: [UInt8], from client: TURNClientID) -> [Output] {
        guard bytes.count >= 4, let allocation = allocationByClient[client].flatMap({ allocations[$0] }) else { return [] }
        let channel = UInt16(bigEndianBytes: bytes[0..<2])
        let length = Int(UInt16(bigEndianBytes: bytes[2..<4]))
        guard bytes.count >= 4 + length, let bound = allocation.channels[channel] else { return [] }
        return relay(Array(bytes[4..<(4 + length)]), from: allocation, to: bound.peer)
    }

    private func relay(_ data: [UInt8], from allocation: Allocation, to peer: TransportAddress) -> [Output] {
        guard let target = policy.target(for: peer) else { return [] }
        allocation.peerByTarget[target] = peer
        return [.relay(allocation: allocation.id, to: target, data)]
    }

    // MARK: From peers

    /// A datagram that reached an allocation's relay socket from `source`.
    public func receiveFromPeer(_ data: [UInt8], allocation id: Int, source: TransportAddress, now: Date) -> [Output] {
        guard let allocation = allocations[id], allocation.relayed != nil else { return [] }
        let peer = allocation.peerByTarget[source] ?? source
        guard let permitted = allocation.permissions[peer.ip], permitted > now else { return [] }
        if let channel = allocation.channelByPeer[peer] {
            var frame = channel.bigEndianBytes + UInt16(data.count).bigEndianBytes + data
            if allocation.client.isStream { frame += [UInt8](repeating: 0, count: (4 - data.count % 4) % 4) }
            return [.reply(allocation.client, frame)]
        }
        let indication = STUNMessage(type: STUNMessageType(method: Self.dataMethod, messageClass: .indication), transactionID: .random(),
                                     attributes: [])
        var message = indication
        message.attributes = [.xorAddress(.xorPeerAddress, peer, transactionID: indication.transactionID), STUNAttribute(type: .data, value: data)]
        return [.reply(allocation.client, STUNCodec.encode(message, fingerprint: false))]
    }

    // MARK: Time and departures

    /// Drops what has expired: allocations, permissions, channel bindings.
    public func expire(now: Date) -> [Output] {
        var outputs: [Output] = []
        for allocation in Array(allocations.values) {
            if allocation.expires <= now {
                outputs += remove(allocation)
                continue
            }
            allocation.permissions = allocation.permissions.filter { $0.value > now }
            for (channel, binding) in allocation.channels where binding.expires <= now {
                allocation.channels[channel] = nil
                allocation.channelByPeer[binding.peer] = nil
            }
        }
        return outputs
    }

    /// A TCP or TLS client went away: its allocation goes with it (RFC 8656 §3.1).
    public func clientGone(_ client: TURNClientID) -> [Output] {
        guard let allocation = allocationByClient[client].flatMap({ allocations[$0] }) else { return [] }
        return remove(allocation)
    }

    private func remove(_ allocation: Allocation) -> [Output] {
        forget(allocation)
        return [.closeRelay(allocation: allocation.id, client: allocation.client)]
    }

    private func forget(_ allocation: Allocation) {
        allocations[allocation.id] = nil
        if allocationByClient[allocation.client] == allocation.id { allocationByClient[allocation.client] = nil }
    }

    // MARK: Messages

    private func success(_ request: STUNMessage, _ attributes: [STUNAttribute], key: [UInt8]) -> [UInt8] {
        STUNCodec.encode(STUNMessage(type: STUNMessageType(method: request.type.method, messageClass: .successResponse),
                                     transactionID: request.transactionID, attributes: attributes), integrityKey: key)
    }

    private func error(_ request: STUNMessage, _ code: Int, _ reason: String, key: [UInt8]? = nil, extra: [STUNAttribute] = []) -> [UInt8] {
        STUNCodec.encode(STUNMessage(type: STUNMessageType(method: request.type.method, messageClass: .errorResponse),
                                     transactionID: request.transactionID, attributes: [.errorCode(code, reason: reason)] + extra), integrityKey: key)
    }

    private func challenge(_ request: STUNMessage, _ code: Int, _ reason: String, now: Date) -> [UInt8] {
        error(request, code, reason, extra: [STUNAttribute(type: .realm, value: Array(settings.realm.utf8)),
                                             STUNAttribute(type: .nonce, value: Array(nonce(at: now).utf8))])
    }

    /// A nonce that carries its own issue time and a MAC over it: nothing to remember.
    func nonce(at time: Date) -> String {
        let stamp = String(Int(time.timeIntervalSince1970), radix: 16)
        let mac = HMAC<SHA256>.authenticationCode(for: Data(stamp.utf8), using: nonceKey)
        return stamp + "-" + Data(mac).prefix(12).map { String(format: "%02x", $0) }.joined()
    }

    func isFresh(nonce: String, now: Date) -> Bool {
        guard let dash = nonce.firstIndex(of: "-"), let issued = Int(nonce[..<dash], radix: 16),
              nonce == self.nonce(at: Date(timeIntervalSince1970: TimeInterval(issued))) else { return false }
        return now.timeIntervalSince1970 - TimeInterval(issued) < settings.nonceLifetime
    }
}

extension STUNAttribute {
    static func lifetime(_ seconds: UInt32) -> STUNAttribute { STUNAttribute(type: .lifetime, value: seconds.bigEndianBytes) }
}
