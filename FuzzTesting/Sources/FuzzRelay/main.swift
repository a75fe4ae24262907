import Crypto
import FuzzDriver
import RelayWire

let secret = SymmetricKey(data: Array("a fuzzing secret for relay keys!".utf8))
let nonce = Array("sixteen byte nce".utf8)

/// Any bytes: reading the header (or a keepalive's layer masks) never traps and what it reads
/// writes back the same; opening
/// under the relay's key only ever answers yes or no; and the bytes sealed as a payload open
/// again to the same bytes.
func fuzzRelay(_ bytes: [UInt8]) {
    let header = try? RelayHeader.parse(bytes)
    if let header {
        precondition((try? RelayHeader.parse(header.bytes + Array(bytes.dropFirst(RelayHeader.size)))) == header, "relay header round trip changed it")
    }
    let masks = RelayLayers.decode(bytes)
    precondition(RelayLayers.decode(RelayLayers.encode(masks)) == masks, "layer masks round trip changed them")
    var player = RelayCipher(secret: secret, nonce: nonce, sending: .towardPublisher)
    _ = try? player.open(bytes, relayID: header?.relayID ?? 1)
    guard bytes.count <= RelayHeader.maxPayload else { return }
    var publisher = RelayCipher(secret: secret, nonce: nonce, sending: .towardPlayer)
    var fresh = RelayCipher(secret: secret, nonce: nonce, sending: .towardPublisher)
    guard let sealed = try? publisher.seal(kind: .media, track: 1, layer: 2, relayID: 7, payload: bytes),
          let opened = try? fresh.open(sealed, relayID: 7) else { fatalError("a sealed payload does not open") }
    precondition(opened.payload == bytes && opened.header.layer == 2, "sealing changed the payload")
}

runFuzzer(fuzzRelay)
