import Crypto
import Foundation
import Logging
import MediaPlane
import NIOCore
import NIOPosix
import RTCP
import RTP
import SDP
import Synchronization
import Testing
@testable import Relay
@testable import RelayWire
@testable import SFU

/// A transport with no sessions: the relay and the program's tap are all these tests use.
private final class LoopTransport: MediaTransport, @unchecked Sendable {
    let loop: any EventLoop
    private let started = ContinuousClock.now
    var now: Duration { ContinuousClock.now - started }
    let protectionOverhead = 0
    let maxMediaSections = 16
    let allowsLossInjection = false

    init(loop: any EventLoop) {
        self.loop = loop
    }

    func open(tag: String, owner: SessionOwner, negotiate: @escaping @Sendable (LocalTransportParameters) throws -> SDPAnswer,
              makeSink: @escaping @Sendable (SDPAnswer) -> any MediaSink) async throws -> (id: SessionID, answer: SDPAnswer) {
        throw MediaTransportError.notRunning
    }

    func close(sessionID: SessionID, tag: String?, identity: String?, reason: String) async -> Bool { false }
    func close(tag: String, reason: String) async -> Int { 0 }
    func close(identity: String, reason: String) async -> Int { 0 }
    func sessionCount(tag: String) async -> Int { 0 }
    func setEgressLoss(sessionID: SessionID, probability: Double) async -> Bool { false }
    func sendRTP(_ packet: ByteBuffer, on session: any MediaSession) {}
    func sendRTCP(_ packets: [RTCPPacket], on session: any MediaSession) {}
    func fanOut(count: Int, _ body: (any MediaLane, Range<Int>) -> Void) -> Int { 0 }
    func flushOutgoing() {}
}

private final class KeyframeCount: Sendable {
    let count = Atomic<Int>(0)
}

private final class TappedSequences: Sendable {
    let sequences = Mutex<[UInt16]>([])
}

/// Two nodes' SFUs and relay ends on loopback: a source on the publisher's node, a tap on
/// the player's node, and a relay between them.
private final class Pair: @unchecked Sendable {
    static let broadcast = "b"
    static let participant = ParticipantID("p")
    let publisherSFU: SFU
    let playerSFU: SFU
    let publisherHub: RelayHub
    let playerHub: RelayHub
    let source: LocalSource
    let keyframes = KeyframeCount()
    let taps = TappedSequences()
    var tappedCount: Int { taps.sequences.withLock { $0.count } }
    var tappedSequences: [UInt16] { taps.sequences.withLock { $0 } }
    var keyframeRequests: Int { keyframes.count.load(ordering: .relaxed) }

    init(timeouts: RelayHub.Timeouts = RelayHub.Timeouts()) async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let logger = Logger(label: "relay-test")
        publisherSFU = SFU(transport: LoopTransport(loop: group.next()), logger: logger)
        playerSFU = SFU(transport: LoopTransport(loop: group.next()), logger: logger)
        let secret = SymmetricKey(size: .bits256)
        publisherHub = RelayHub(sfu: publisherSFU, secret: secret, timeouts: timeouts, logger: logger)
        playerHub = RelayHub(sfu: playerSFU, secret: secret, timeouts: timeouts, logger: logger)
        _ = try await publisherHub.start(host: "127.0.0.1", port: 0)
        _ = try await playerHub.start(host: "127.0.0.1", port: 0)
        let requests = keyframes
        source = try await publisherSFU.openLocalSource(broadcastID: Self.broadcast, participantID: Self.participant,
                                                        tracks: [.init(kind: .video, codec: RTPCodec(payloadType: 102, name: "H264", clockRate: 90000))]) {
            requests.count.add(1, ordering: .relaxed)
        }
        let taps = self.taps
        await playerSFU.tap(broadcastID: Self.broadcast, participantID: Self.participant) { packet in
            taps.sequences.withLock { $0.append(packet.packet.sequenceNumber) }
        }
    }

    /// Asks the publisher's node for a relay and opens it on the player's node, as `RemoteMedia` does over HTTP.
    func relay(relayID: UInt32 = 42) async throws {
        let nonce = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let answer = try await publisherHub.openOutlet(RelayRequest(broadcastID: Self.broadcast, participantID: Self.participant.rawValue,
                                                                    relayID: relayID, nonce: Data(nonce).base64EncodedString()))
        let opened = try await playerHub.openInlet(broadcastID: Self.broadcast, participantID: Self.participant, relayID: relayID, nonce: nonce,
                                                   answer: answer, publisher: try SocketAddress(ipAddress: "127.0.0.1", port: publisherHub.port))
        #expect(opened)
    }

    /// Sends `count` IDR slices, 5 ms apart, each a keyframe the tap passes on.
    func send(_ count: Int) async throws {
        for index in 0..<count {
            source.send(kind: .video, payload: [0x65, UInt8(truncatingIfNeeded: index)], timestamp: UInt32(index) * 3000, marker: true)
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    func stop() async {
        await publisherHub.stop()
        await playerHub.stop()
    }
}

@Suite("Relay hub: a participant's packets from one node's router to another's, over UDP")
struct RelayHubTests {
    static func eventually(_ seconds: Double = 15, _ condition: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return await condition()
    }

    @Test("packets cross in order once the player's keepalive arrives; a keyframe request reaches the publisher")
    func relays() async throws {
        let pair = try await Pair()
        try await pair.relay()
        // Media leaves only once the publisher's node has heard from the player's: wait for that.
        #expect(await Self.eventually { await pair.publisherHub.counts().outlets == 1 })
        try await Task.sleep(for: .milliseconds(100))
        try await pair.send(60)
        #expect(await Self.eventually { pair.tappedCount >= 60 })
        let sequences = pair.tappedSequences
        #expect(zip(sequences, sequences.dropFirst()).allSatisfy { $1 == $0 &+ 1 })
        let before = pair.keyframeRequests
        pair.playerSFU.requestKeyframe(broadcastID: Pair.broadcast, participantID: Pair.participant)
        #expect(await Self.eventually { pair.keyframeRequests > before })
        await pair.stop()
    }

    @Test("media lost on the hop is NACKed by the player's node and sent again from the producer's cache")
    func repairsLoss() async throws {
        let pair = try await Pair()
        try await pair.relay()
        #expect(await Self.eventually { await pair.publisherHub.counts().outlets == 1 })
        try await Task.sleep(for: .milliseconds(100))
        let sent = Mutex(0)
        // Every fourth packet of the first 60 is lost the first time; retransmissions get through.
        try await pair.publisherSFU.transport.loop.submit {
            pair.publisherHub.lossInjection = { kind, retransmission in
                guard kind == .media, !retransmission else { return false }
                return sent.withLock { count in
                    count += 1
                    return count <= 60 && count % 4 == 0
                }
            }
        }.get()
        // 61 packets: a loss shows as a gap only once a later packet arrives.
        try await pair.send(61)
        #expect(await Self.eventually { Set(pair.tappedSequences).count == 61 })
        let received = pair.tappedSequences
        let first = try #require(received.first)
        #expect(Set(received) == Set((0..<61).map { first &+ UInt16($0) }), "holes left in \(received)")
        #expect(received != received.sorted { $0 &- first < $1 &- first }, "nothing was lost and repaired")
        await pair.stop()
    }

    @Test("a forger without the key cannot take the relay's media; the relay closes once nothing plays it")
    func forgersAndIdleRelays() async throws {
        var timeouts = RelayHub.Timeouts()
        timeouts.idleInlet = .milliseconds(600)
        let pair = try await Pair(timeouts: timeouts)
        try await pair.relay(relayID: 9)
        #expect(await Self.eventually { await pair.publisherHub.counts().outlets == 1 })
        // Someone else sends a keepalive for relay 9 sealed under another secret, and junk.
        let forger = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        var wrongKey = RelayCipher(secret: SymmetricKey(size: .bits256), nonce: Array(repeating: 0, count: 16), sending: .towardPublisher)
        let target = try SocketAddress(ipAddress: "127.0.0.1", port: pair.publisherHub.port)
        for datagram in [try wrongKey.seal(kind: .keepalive, relayID: 9, payload: []), Array(repeating: UInt8(0xA7), count: 40), [1, 2, 3]] {
            try await forger.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: ByteBuffer(bytes: datagram)))
        }
        try await Task.sleep(for: .milliseconds(100))
        try await pair.send(20)
        #expect(await Self.eventually { pair.tappedCount >= 20 })
        try await forger.close()

        await pair.playerSFU.untap(broadcastID: Pair.broadcast, participantID: Pair.participant)
        #expect(await Self.eventually { await pair.playerHub.counts().inlets == 0 })
        // The player's node said goodbye: the publisher's node drops its end at once.
        #expect(await Self.eventually(5) { await pair.publisherHub.counts().outlets == 0 })
        await pair.stop()
    }

    @Test("a participant who publishes again on the publishing node (new producers, a new SSRC) goes on through the same relay")
    func republish() async throws {
        let pair = try await Pair()
        try await pair.relay()
        #expect(await Self.eventually { await pair.publisherHub.counts().outlets == 1 })
        try await Task.sleep(for: .milliseconds(100))
        try await pair.send(10)
        #expect(await Self.eventually { pair.tappedCount >= 10 })
        await pair.publisherSFU.closeLocalSource(broadcastID: Pair.broadcast, participantID: Pair.participant)
        let again = try await pair.publisherSFU.openLocalSource(broadcastID: Pair.broadcast, participantID: Pair.participant,
                                                                tracks: [.init(kind: .video, codec: RTPCodec(payloadType: 102, name: "H264", clockRate: 90000))]) {}
        for index in 0..<10 {
            again.send(kind: .video, payload: [0x65, UInt8(index)], timestamp: UInt32(index) * 3000, marker: true)
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(await Self.eventually { pair.tappedCount >= 20 })
        await pair.stop()
    }

    @Test("the publishing node relays only the simulcast layers the other node's players need", .timeLimit(.minutes(1)))
    func relaysOnlyTheLayersConsumed() async throws {
        let pair = try await Pair()
        let simulcaster = ParticipantID("s")
        let media = NegotiatedMedia(mid: "1", kind: .video, direction: .recvonly, codec: RTPCodec(payloadType: 102, name: "H264", clockRate: 90000),
                                    retransmission: nil, headerExtensions: [], remoteSSRCs: [], remoteRetransmissionPairs: [],
                                    remoteRIDs: ["h", "m", "l"], localStream: nil)
        let sfu = pair.publisherSFU
        let producer = try await sfu.transport.loop.submit {
            let producer = Producer(id: ProducerID(participant: simulcaster, mid: "1"), media: media)
            sfu.router(Pair.broadcast).add(producer, onKeyframeRequest: { _ in })
            return producer
        }.get()
        let nonce = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let answer = try await pair.publisherHub.openOutlet(RelayRequest(broadcastID: Pair.broadcast, participantID: simulcaster.rawValue,
                                                                         relayID: 77, nonce: Data(nonce).base64EncodedString()))
        #expect(answer.tracks.first?.rids == ["h", "m", "l"])
        #expect(try await pair.playerHub.openInlet(broadcastID: Pair.broadcast, participantID: simulcaster, relayID: 77, nonce: nonce, answer: answer,
                                                   publisher: try SocketAddress(ipAddress: "127.0.0.1", port: pair.publisherHub.port)))
        // The publisher sends three layers, 50 times a second, for as long as the test runs.
        let sending = Task {
            var sequence: UInt16 = 0
            while !Task.isCancelled {
                sequence &+= 1
                let number = sequence
                try? await sfu.transport.loop.submit {
                    for layer in 0..<3 {
                        var builder = RTPPacketBuilder(payloadType: 102, sequenceNumber: number, timestamp: UInt32(number) * 1800, ssrc: 1000 + UInt32(layer))
                        builder.payload = [0x65, UInt8(truncatingIfNeeded: number)]
                        guard let packet = try? RTPPacket(builder.serialize()),
                              let arrival = producer.receive(packet, layer: layer, now: sfu.transport.now) else { continue }
                        sfu.router(Pair.broadcast).route(arrival, from: producer, transport: sfu.transport, now: sfu.transport.now)
                    }
                }.get()
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        let player = pair.playerSFU
        let received = { () async -> [Int] in
            (try? await player.transport.loop.submit {
                player.router(Pair.broadcast).producer(ProducerID(participant: simulcaster, mid: "1"))?.layers.map(\.packets) ?? []
            }.get()) ?? []
        }
        // Every layer crosses at first; nobody here consumes the upper two, so once the
        // player's node has held that view for its hold-down it asks for the lowest alone.
        #expect(await Self.eventually { await received().allSatisfy { $0 > 10 } })
        #expect(await Self.eventually(10) {
            let before = await received()
            try? await Task.sleep(for: .milliseconds(600))
            let after = await received()
            return after.count == 3 && after[0] > before[0] + 10 && after[1] == before[1] && after[2] == before[2]
        })
        sending.cancel()
        await pair.stop()
    }

    @Test("a relay of someone who publishes nothing, with a reused id or a bad nonce is refused")
    func refusals() async throws {
        let pair = try await Pair()
        let nonce = Data(Array(repeating: UInt8(1), count: 16)).base64EncodedString()
        await #expect(throws: RelayRefusal.notPublishing) {
            try await pair.publisherHub.openOutlet(RelayRequest(broadcastID: Pair.broadcast, participantID: "nobody", relayID: 1, nonce: nonce))
        }
        await #expect(throws: RelayRefusal.self) {
            try await pair.publisherHub.openOutlet(RelayRequest(broadcastID: Pair.broadcast, participantID: Pair.participant.rawValue, relayID: 1, nonce: "c2hvcnQ="))
        }
        _ = try await pair.publisherHub.openOutlet(RelayRequest(broadcastID: Pair.broadcast, participantID: Pair.participant.rawValue, relayID: 1, nonce: nonce))
        await #expect(throws: RelayRefusal.relayIDInUse) {
            try await pair.publisherHub.openOutlet(RelayRequest(broadcastID: Pair.broadcast, participantID: Pair.participant.rawValue, relayID: 1, nonce: nonce))
        }
        await pair.stop()
    }
}
