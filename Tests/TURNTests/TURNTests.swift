import Foundation
import STUN
import Testing
@testable import TURN

@Suite("TURN stream framing")
struct TURNStreamFramerTests {
    @Test("frames arrive whole however the bytes are split, ChannelData with its padding")
    func splits() throws {
        let stun = STUNCodec.encode(STUNMessage(type: .bindingRequest, transactionID: .random()))
        let channelData: [UInt8] = [0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0]
        let stream = stun + channelData + stun
        var framer = TURNStreamFramer()
        var frames: [[UInt8]] = []
        for byte in stream { frames += try framer.feed([byte]) }
        #expect(frames == [stun, channelData, stun])
    }

    @Test("a stream that is not TURN, or a frame too large, is refused")
    func refuses() {
        var framer = TURNStreamFramer()
        // A TLS record where decrypted TURN should be.
        #expect(throws: TURNStreamFramer.FramingError.notTURN) { try framer.feed([0x16, 0x03, 0x01, 0x02, 0x00]) }
        var rtp = TURNStreamFramer()
        #expect(throws: TURNStreamFramer.FramingError.notTURN) { try rtp.feed([0x80, 0, 0, 0]) }
        var oversized = TURNStreamFramer()
        #expect(throws: TURNStreamFramer.FramingError.tooLarge(20 + 65535)) { try oversized.feed([0x00, 0x01, 0xFF, 0xFF]) }
    }
}

@Suite("TURN server state machine")
struct TURNServerCoreTests {
    let credentials = TURNCredentials(secret: Array("unit-secret-0123456789".utf8))
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    var client = TURNClientID.udp(TransportAddress(ip: [192, 0, 2, 1], port: 5000))

    init() {}

    init(client: TURNClientID) {
        self.client = client
    }

    func core() -> TURNServerCore {
        TURNServerCore(credentials: credentials, policy: TURNRelayPolicy(ownAddresses: [[203, 0, 113, 7]], localAddresses: [[127, 0, 0, 1]], mediaPort: 7882))
    }

    func allocate(_ core: TURNServerCore, expires: Date) -> (outputs: [TURNServerCore.Output], key: [UInt8]) {
        let request = STUNMessage(type: STUNMessageType(method: 0x003, messageClass: .request), transactionID: .random(),
                                  attributes: [STUNAttribute(type: .requestedTransport, value: [17, 0, 0, 0])])
        guard case .reply(_, let bytes)? = core.receive(STUNCodec.encode(request), from: client, mapped: nil, now: now).first,
              let challenge = try? STUNCodec.parse(bytes), challenge.message.errorCode?.code == 401,
              let realm = challenge.message.attribute(.realm), let nonce = challenge.message.attribute(.nonce) else { return ([], []) }
        let (username, password) = credentials.issue(identity: "host", expires: expires)
        var authenticated = request
        authenticated.transactionID = .random()
        authenticated.attributes += [.username(username), realm, nonce]
        let key = STUNCodec.longTermKey(username: username, realm: "tally", password: password)
        return (core.receive(STUNCodec.encode(authenticated, integrityKey: key), from: client, mapped: nil, now: now), key)
    }

    @Test("an Allocate is challenged, then opens a relay with valid credentials, never with expired ones")
    func credentialsDecide() throws {
        let server = core()
        let (opened, _) = allocate(server, expires: now.addingTimeInterval(60))
        #expect(opened == [.openRelay(allocation: 1)])
        let (refused, _) = allocate(core(), expires: now.addingTimeInterval(-1))
        guard case .reply(_, let bytes)? = refused.first else { Issue.record("no answer"); return }
        #expect(try STUNCodec.parse(bytes).message.errorCode?.code == 401)
    }

    @Test("one credential holds only so many allocations")
    func quota() throws {
        var settings = TURNServerCore.Settings()
        settings.maxAllocationsPerIdentity = 2
        let server = TURNServerCore(settings: settings, credentials: credentials,
                                    policy: TURNRelayPolicy(ownAddresses: [], localAddresses: [[127, 0, 0, 1]], mediaPort: 7882))
        var answers: [[TURNServerCore.Output]] = []
        for port in UInt16(5000)..<5003 {
            let other = TURNServerCoreTests(client: .udp(TransportAddress(ip: [192, 0, 2, 1], port: port)))
            answers.append(other.allocate(server, expires: now.addingTimeInterval(60)).outputs)
        }
        #expect(answers[0] == [.openRelay(allocation: 1)] && answers[1] == [.openRelay(allocation: 2)])
        guard case .reply(_, let bytes)? = answers[2].first else { Issue.record("no answer"); return }
        #expect(try STUNCodec.parse(bytes).message.errorCode?.code == 486)
    }

    @Test("permissions only for this host's and the announced addresses; data only to the media port")
    func relaysOnlyToTally() throws {
        let server = core()
        let (_, key) = allocate(server, expires: now.addingTimeInterval(60))
        _ = server.allocated(1, relayed: TransportAddress(ip: [203, 0, 113, 7], port: 40000), now: now)
        func permit(_ ip: [UInt8]) throws -> Int? {
            let request = STUNMessage(type: STUNMessageType(method: 0x008, messageClass: .request), transactionID: .random(), attributes: [])
            var message = request
            message.attributes = [.xorAddress(.xorPeerAddress, TransportAddress(ip: ip, port: 7882), transactionID: request.transactionID)]
            // Reuse the nonce of a fresh challenge: any request without credentials gets one.
            guard case .reply(_, let challengeBytes)? = server.receive(STUNCodec.encode(message), from: client, mapped: nil, now: now).first,
                  let challenge = try? STUNCodec.parse(challengeBytes), let nonce = challenge.message.attribute(.nonce) else { return nil }
            let (username, _) = credentials.issue(identity: "host", expires: now.addingTimeInterval(60))
            message.attributes += [.username(username), STUNAttribute(type: .realm, value: Array("tally".utf8)), nonce]
            guard case .reply(_, let bytes)? = server.receive(STUNCodec.encode(message, integrityKey: key), from: client, mapped: nil, now: now).first else { return nil }
            return try STUNCodec.parse(bytes).message.errorCode?.code ?? 0
        }
        #expect(try permit([10, 0, 0, 1]) == 403)
        #expect(try permit([169, 254, 169, 254]) == 403)
        #expect(try permit([203, 0, 113, 7]) == 0)
        let policy = TURNRelayPolicy(ownAddresses: [[203, 0, 113, 7]], localAddresses: [[127, 0, 0, 1]], mediaPort: 7882)
        #expect(policy.target(for: TransportAddress(ip: [203, 0, 113, 7], port: 7882)) == TransportAddress(ip: [127, 0, 0, 1], port: 7882))
        #expect(policy.target(for: TransportAddress(ip: [203, 0, 113, 7], port: 22)) == nil)
    }
}
