import Crypto
import SDP
import Testing
@testable import Relay
@testable import RelayWire

@Suite("Relay datagrams: sealed, authenticated, replay-proof")
struct RelayCipherTests {
    static let secret = SymmetricKey(data: Array(repeating: UInt8(7), count: 32))
    static let nonce = Array(0..<16).map(UInt8.init)

    static func pair() -> (publisher: RelayCipher, player: RelayCipher) {
        (RelayCipher(secret: secret, nonce: nonce, sending: .towardPlayer), RelayCipher(secret: secret, nonce: nonce, sending: .towardPublisher))
    }

    @Test("what one end seals the other opens, in both directions, with the header as sent")
    func roundTrip() throws {
        var (publisher, player) = Self.pair()
        let packet: [UInt8] = [0x80, 96, 0, 1, 0, 0, 0, 9, 0, 0, 0, 42, 0xAB, 0xCD]
        let datagram = try publisher.seal(kind: .media, track: 1, layer: 2, relayID: 77, payload: packet)
        #expect(datagram.count == RelayHeader.size + packet.count + RelayCipher.tagSize)
        #expect(!datagram[RelayHeader.size...].starts(with: packet))
        let (header, payload) = try player.open(datagram, relayID: 77)
        #expect(payload == packet)
        #expect(header == RelayHeader(kind: .media, track: 1, layer: 2, relayID: 77, counter: 1))
        let back = try player.seal(kind: .feedback, relayID: 77, payload: [1, 2, 3])
        #expect(try publisher.open(back, relayID: 77).payload == [1, 2, 3])
    }

    @Test("a datagram sealed by an independent implementation (Python's cryptography: HKDF-SHA256, AES-128-GCM) opens")
    func knownAnswer() throws {
        let hex = "a71100020000000100000000000000017142b484b6ed89cfaef4b9813cc36c1f3e24008122b082f29c1b2dd113d2e91e"
        let datagram = stride(from: 0, to: hex.count, by: 2).map { UInt8(hex.dropFirst($0).prefix(2), radix: 16)! }
        var player = RelayCipher(secret: SymmetricKey(data: Array("a fuzzing secret for relay keys!".utf8)),
                                 nonce: Array("sixteen byte nce".utf8), sending: .towardPublisher)
        let (header, payload) = try player.open(datagram, relayID: 1)
        #expect(header == RelayHeader(kind: .media, track: 0, layer: 2, relayID: 1, counter: 1))
        #expect(payload == [0x80, 102, 0, 1, 0, 0, 0x0B, 0xB8, 0, 0, 0, 42, 0x65, 1, 2, 3])
    }

    @Test("a changed byte anywhere, another relay's id, another nonce or a datagram sealed the same way back is refused")
    func forgeries() throws {
        var (publisher, player) = Self.pair()
        let datagram = try publisher.seal(kind: .media, relayID: 5, payload: [9, 9, 9, 9])
        for index in [2, 3, 10, RelayHeader.size, datagram.count - 1] {
            var tampered = datagram
            tampered[index] ^= 0x01
            var fresh = Self.pair().player
            #expect(throws: RelayError.authenticationFailed) { try fresh.open(tampered, relayID: 5) }
        }
        #expect(throws: RelayError.authenticationFailed) { try player.open(datagram, relayID: 6) }
        var stranger = RelayCipher(secret: Self.secret, nonce: Array(repeating: 1, count: 16), sending: .towardPublisher)
        #expect(throws: RelayError.authenticationFailed) { try stranger.open(datagram, relayID: 5) }
        // A player's own datagram reflected back to it does not open: each direction has its key.
        let own = try player.seal(kind: .keepalive, relayID: 5, payload: [])
        #expect(throws: RelayError.authenticationFailed) { try player.open(own, relayID: 5) }
    }

    @Test("a datagram opens once; late ones inside the window open, older ones do not")
    func replays() throws {
        var (publisher, player) = Self.pair()
        let datagrams = try (0..<200).map { _ in try publisher.seal(kind: .media, relayID: 1, payload: [0]) }
        _ = try player.open(datagrams[0], relayID: 1)
        #expect(throws: RelayError.replayed) { try player.open(datagrams[0], relayID: 1) }
        _ = try player.open(datagrams[150], relayID: 1)
        _ = try player.open(datagrams[100], relayID: 1)
        #expect(throws: RelayError.replayed) { try player.open(datagrams[100], relayID: 1) }
        #expect(throws: RelayError.replayed) { try player.open(datagrams[10], relayID: 1) }
        _ = try player.open(datagrams[199], relayID: 1)
        _ = try player.open(datagrams[151], relayID: 1)
    }

    @Test("headers that are short, foreign or of an unknown kind are told apart")
    func headers() {
        #expect(throws: RelayError.tooShort(3)) { try RelayHeader.parse([0xA7, 0x11, 0]) }
        var foreign = RelayHeader(kind: .media, relayID: 1, counter: 1).bytes + Array(repeating: 0, count: 16)
        foreign[0] = 0x80
        #expect(throws: RelayError.notARelayDatagram) { try RelayHeader.parse(foreign) }
        var unknown = RelayHeader(kind: .media, relayID: 1, counter: 1).bytes + Array(repeating: 0, count: 16)
        unknown[1] = 0x19
        #expect(throws: RelayError.unknownKind(9)) { try RelayHeader.parse(unknown) }
        var (publisher, _) = Self.pair()
        #expect(throws: RelayError.tooLarge(1501)) { try publisher.seal(kind: .media, relayID: 1, payload: Array(repeating: 0, count: 1501)) }
    }

    @Test("the replay window keeps 128 counters across shifts of every size")
    func window() {
        var window = ReplayWindow()
        #expect(!window.mayAccept(0))
        for counter: UInt64 in [1, 2, 70, 3, 200, 73, 327] where window.mayAccept(counter) { window.accept(counter) }
        #expect(!window.mayAccept(327) && !window.mayAccept(200))
        #expect(!window.mayAccept(199))
        #expect(window.mayAccept(201) && window.mayAccept(326))
        window.accept(264)
        #expect(!window.mayAccept(264) && !window.mayAccept(200))
    }

    @Test("a track's description rebuilds the producer's media; one out of bounds is refused")
    func tracks() throws {
        let media = NegotiatedMedia(mid: "1", kind: .video, direction: .recvonly,
                                    codec: RTPCodec(payloadType: 96, name: "VP8", clockRate: 90000, feedback: ["nack", "nack pli"]),
                                    retransmission: RTPCodec(payloadType: 97, name: "rtx", clockRate: 90000, parameters: [("apt", "96")]),
                                    headerExtensions: [.init(id: 4, uri: "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id")],
                                    remoteSSRCs: [], remoteRetransmissionPairs: [], remoteRIDs: ["h", "m", "l"], localStream: nil)
        let track = RelayTrack(media)
        let rebuilt = try #require(track.media)
        #expect(rebuilt.codec == media.codec && rebuilt.headerExtensions == media.headerExtensions && rebuilt.remoteRIDs == ["h", "m", "l"])
        #expect(rebuilt.retransmission == nil)
        var tooManyLayers = track
        tooManyLayers.rids = ["a", "b", "c", "d"]
        #expect(tooManyLayers.media == nil)
        var brokenParameter = track
        brokenParameter.codec.parameters = [["apt"]]
        #expect(brokenParameter.media == nil)
    }
}
