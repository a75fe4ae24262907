import STUN

/// Where a peer's packets come from: an address, over UDP or one ICE-TCP connection.
public struct ICEPath: Sendable, Hashable, CustomStringConvertible {
    public enum Transport: String, Sendable { case udp, tcp }

    public var transport: Transport
    public var address: TransportAddress

    public init(_ transport: Transport, _ address: TransportAddress) {
        self.transport = transport
        self.address = address
    }

    public var description: String { "\(transport.rawValue) \(address)" }
}

/// The ICE-lite side of one peer connection (RFC 8445 §2.5, §7.3): Tally never sends checks;
/// it answers the browser's, follows its nomination, and keeps consent (RFC 7675).
///
/// A state machine fed with STUN bytes and the time; it returns what to do and never does it.
public struct ICELiteAgent: Sendable {
    public enum State: Sendable, Equatable {
        /// No valid check yet.
        case waiting
        /// Checks succeed; `selected` carries media.
        case connected(selected: ICEPath)
        /// Consent lapsed or the session was closed; the peer is to be dropped.
        case closed(reason: String)
    }

    /// What the caller must do after feeding a packet or the time.
    public enum Action: Sendable, Equatable {
        case send(bytes: [UInt8], to: ICEPath)
        /// Media now flows on this path (first nomination, or the client moved).
        case select(ICEPath)
        /// Stop: drop the peer.
        case close(reason: String)
    }

    public let localUsernameFragment: String
    public let localPassword: String
    public let remoteUsernameFragment: String
    /// RFC 7675 §5.1: consent expires 30 s after the last authenticated check.
    public var consentTimeout: Duration = .seconds(30)
    /// A session that never gets a valid check is given up after this long.
    public var connectTimeout: Duration = .seconds(30)

    public private(set) var state: State = .waiting
    private var lastConsent: [ICEPath: Duration] = [:]
    private let startedAt: Duration

    /// `now` is any monotonic time; only differences matter.
    public init(localUsernameFragment: String, localPassword: String, remoteUsernameFragment: String, now: Duration) {
        self.localUsernameFragment = localUsernameFragment
        self.localPassword = localPassword
        self.remoteUsernameFragment = remoteUsernameFragment
        startedAt = now
    }

    /// The local fragment a check is addressed to ("local:remote"), for routing a packet to
    /// its session before any address is known.
    public static func localUsernameFragment(ofRequest message: STUNMessage) -> String? {
        guard let username = message.username, let colon = username.firstIndex(of: ":") else { return nil }
        return String(username[..<colon])
    }

    public var selectedPath: ICEPath? {
        if case .connected(let selected) = state { return selected }
        return nil
    }

    /// Handles one STUN message from `path`. Anything not a correctly authenticated
    /// binding request for this session is dropped without reply: an unauthenticated
    /// sender must never get more bytes back than it sent.
    public mutating func receive(_ received: ReceivedSTUNMessage, from path: ICEPath, now: Duration) -> [Action] {
        if case .closed = state { return [] }
        let request = received.message
        guard request.type == .bindingRequest, received.hasFingerprint,
              request.username == "\(localUsernameFragment):\(remoteUsernameFragment)",
              (try? received.verifyIntegrity(key: Array(localPassword.utf8))) != nil else { return [] }

        let key = Array(localPassword.utf8)
        if !request.unknownComprehensionRequired.isEmpty {
            let error = STUNMessage(type: .bindingError, transactionID: request.transactionID, attributes: [
                .errorCode(420, reason: "Unknown Attribute"), .unknownAttributes(request.unknownComprehensionRequired),
            ])
            return [.send(bytes: STUNCodec.encode(error, integrityKey: key), to: path)]
        }
        // A lite agent is always controlled; a peer that also claims to be controlled is told so.
        if request.iceControlled != nil {
            let error = STUNMessage(type: .bindingError, transactionID: request.transactionID, attributes: [.errorCode(487, reason: "Role Conflict")])
            return [.send(bytes: STUNCodec.encode(error, integrityKey: key), to: path)]
        }

        lastConsent[path] = now
        let response = STUNMessage(type: .bindingSuccess, transactionID: request.transactionID, attributes: [
            .xorMappedAddress(path.address, transactionID: request.transactionID),
        ])
        var actions: [Action] = [.send(bytes: STUNCodec.encode(response, integrityKey: key), to: path)]
        if request.useCandidate, selectedPath != path {
            state = .connected(selected: path)
            actions.append(.select(path))
        }
        return actions
    }

    /// Call periodically (about once a second): ends the session when consent lapses, or
    /// when no valid check ever arrived.
    public mutating func tick(now: Duration) -> [Action] {
        switch state {
        case .closed:
            return []
        case .waiting:
            guard now - startedAt >= connectTimeout else { return [] }
            return close("no ICE connectivity check within \(connectTimeout)")
        case .connected(let selected):
            lastConsent = lastConsent.filter { now - $0.value < consentTimeout }
            guard lastConsent[selected] == nil else { return [] }
            return close("consent expired: no check on \(selected) for \(consentTimeout)")
        }
    }

    public mutating func close(_ reason: String) -> [Action] {
        if case .closed = state { return [] }
        state = .closed(reason: reason)
        return [.close(reason: reason)]
    }

    /// Whether media from `path` belongs to this session: only paths that passed a check.
    public func isValidated(_ path: ICEPath) -> Bool {
        lastConsent[path] != nil
    }
}
