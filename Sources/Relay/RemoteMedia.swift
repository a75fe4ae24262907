import Cluster
import Foundation
import Logging
import NetworkPolicy
import NIOCore
import OutboundHTTP
import RelayWire
import SFU

/// A node's way to play media published elsewhere: finds the participant's node, asks it
/// for a relay over HTTP with the node token, and opens the inlet that brings the tracks into
/// the local router. Concurrent asks for one participant share one attempt.
public actor RemoteMedia {
    private let hub: RelayHub
    private let sfu: SFU
    private let locations: PublisherLocations
    private let nodes: NodeDirectory
    /// The node token (see `POST /api/node/relays`), shown to the publisher's node.
    private let token: String
    /// Made at the first relay: a node that never relays never loads the TLS roots for it.
    private var client: OutboundHTTPClient?
    private let policy: OutboundPolicy
    private let logger: Logger
    private var attempts: [String: Task<Bool, Never>] = [:]

    public init(hub: RelayHub, sfu: SFU, locations: PublisherLocations, nodes: NodeDirectory, token: String, policy: OutboundPolicy, logger: Logger) {
        self.hub = hub
        self.sfu = sfu
        self.locations = locations
        self.nodes = nodes
        self.token = token
        self.policy = policy
        self.logger = logger
    }

    /// Makes sure a participant who publishes on another node is in this node's router;
    /// true when a relay brings them here (now or already).
    public func bringHere(broadcastID: String, participantID: ParticipantID) async -> Bool {
        let key = "\(broadcastID)/\(participantID)"
        if let attempt = attempts[key] { return await attempt.value }
        let attempt = Task { await self.open(broadcastID: broadcastID, participantID: participantID) }
        attempts[key] = attempt
        let result = await attempt.value
        attempts[key] = nil
        return result
    }

    /// Brings every participant the program taps here but who publishes elsewhere.
    public func feedTaps() async {
        for (broadcastID, participantID) in await sfu.tappedElsewhere() {
            _ = await bringHere(broadcastID: broadcastID, participantID: participantID)
        }
    }

    private func open(broadcastID: String, participantID: ParticipantID) async -> Bool {
        if await hub.isRelaying(broadcastID: broadcastID, participantID: participantID) { return true }
        guard let nodeID = await locations.node(broadcastID: broadcastID, participantID: participantID.rawValue), nodeID != locations.nodeID,
              let node = try? await nodes.nodes().first(where: { $0.id == nodeID }),
              let base = URL(string: node.url), let host = node.relayHost ?? base.host, let url = URL(string: "/api/node/relays", relativeTo: base) else { return false }
        let relayID = await hub.freeRelayID()
        let nonce = (0..<RelayCipher.nonceSize).map { _ in UInt8.random(in: 0...255) }
        let request = RelayRequest(broadcastID: broadcastID, participantID: participantID.rawValue, relayID: relayID,
                                   nonce: Data(nonce).base64EncodedString())
        let metadata: Logger.Metadata = ["broadcast": "\(broadcastID)", "participant": "\(participantID)", "node": "\(nodeID)"]
        do {
            let client = try self.client ?? OutboundHTTPClient(policy: policy, timeout: .seconds(5), maxResponseBytes: 64 << 10)
            self.client = client
            let response = try await client.send(OutboundHTTPRequest(method: .POST, url: url.absoluteURL, headers: [
                ("Authorization", "Bearer \(token)"), ("Content-Type", "application/json"),
            ], body: Array(try JSONEncoder().encode(request))))
            guard response.status == .ok else {
                logger.info("relay refused by the publisher's node", metadata: metadata.merging(["status": "\(response.status.code)"]) { $1 })
                return false
            }
            let answer = try JSONDecoder().decode(RelayAnswer.self, from: Data(response.body))
            guard (1...65535).contains(answer.port), let address = try await policy.resolve(host: host, port: answer.port).first else { return false }
            _ = try await hub.openInlet(broadcastID: broadcastID, participantID: participantID, relayID: relayID, nonce: nonce, answer: answer,
                                        publisher: address)
            return await hub.isRelaying(broadcastID: broadcastID, participantID: participantID)
        } catch {
            logger.warning("cannot open a relay: \(error)", metadata: metadata)
            return false
        }
    }
}
