import Foundation
import FuzzDriver
import STUN
import TURN

/// A TURN server fed any bytes, after a client has allocated for real: from that client over
/// UDP, from a stream client through the stream framer, and from peers into the relay. It
/// must never trap, and whatever it answers must be STUN or ChannelData.
func fuzzTURN(_ bytes: [UInt8]) {
    let credentials = TURNCredentials(secret: Array("fuzz-secret-0123456789".utf8))
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let policy = TURNRelayPolicy(ownAddresses: [[127, 0, 0, 1]], localAddresses: [[127, 0, 0, 1]], mediaPort: 7882)
    let core = TURNServerCore(credentials: credentials, policy: policy)
    let client = TURNClientID.udp(TransportAddress(ip: [192, 0, 2, 1], port: 5000))
    let mapped = TransportAddress(ip: [192, 0, 2, 1], port: 5000)
    allocate(core, client: client, mapped: mapped, credentials: credentials, now: now)

    var framer = TURNStreamFramer()
    var rest = bytes[...]
    while rest.count >= 3 {
        let route = rest[rest.startIndex]
        let length = Int(UInt16(rest[rest.startIndex + 1]) << 8 | UInt16(rest[rest.startIndex + 2]))
        rest = rest.dropFirst(3)
        let chunk = Array(rest.prefix(length))
        rest = rest.dropFirst(length)
        let outputs: [TURNServerCore.Output]
        switch route % 4 {
        case 0: outputs = core.receive(chunk, from: client, mapped: mapped, now: now)
        case 1:
            guard let frames = try? framer.feed(chunk) else { framer = TURNStreamFramer(); continue }
            outputs = frames.flatMap { core.receive($0, from: .stream(1), mapped: mapped, now: now) }
        case 2: outputs = core.receiveFromPeer(chunk, allocation: 1, source: TransportAddress(ip: [127, 0, 0, 1], port: 7882), now: now)
        default: outputs = core.expire(now: now.addingTimeInterval(Double(length)))
        }
        for case .reply(_, let reply) in outputs {
            precondition(reply.first.map { $0 < 4 || $0 & 0xC0 == 0x40 } ?? false, "TURN answered with neither STUN nor ChannelData")
        }
    }
}

/// A real Allocate: the challenge, then the request with long-term credentials.
func allocate(_ core: TURNServerCore, client: TURNClientID, mapped: TransportAddress, credentials: TURNCredentials, now: Date) {
    let request = STUNMessage(type: STUNMessageType(method: 0x003, messageClass: .request), transactionID: .random(),
                              attributes: [STUNAttribute(type: .requestedTransport, value: [17, 0, 0, 0])])
    guard case .reply(_, let challengeBytes)? = core.receive(STUNCodec.encode(request), from: client, mapped: mapped, now: now).first,
          let challenge = try? STUNCodec.parse(challengeBytes), let nonce = challenge.message.attribute(.nonce),
          let realm = challenge.message.attribute(.realm) else { fatalError("no challenge to an Allocate") }
    let (username, password) = credentials.issue(identity: "fuzz", expires: now.addingTimeInterval(3600))
    var authenticated = request
    authenticated.transactionID = .random()
    authenticated.attributes += [.username(username), realm, nonce]
    let key = STUNCodec.longTermKey(username: username, realm: String(decoding: realm.value, as: UTF8.self), password: password)
    let outputs = core.receive(STUNCodec.encode(authenticated, integrityKey: key), from: client, mapped: mapped, now: now)
    guard case .openRelay(let id)? = outputs.first else { fatalError("an authenticated Allocate did not open a relay: \(outputs)") }
    _ = core.allocated(id, relayed: TransportAddress(ip: [127, 0, 0, 1], port: 40000), now: now)
}

runFuzzer(fuzzTURN)
