import FuzzDriver
import RTMP

/// Any bytes, as a server would send them to our push client or an encoder to our ingest:
/// the chunk reader, AMF0 and the publish session never trap, and buffering stays bounded.
func fuzzRTMP(_ bytes: [UInt8]) {
    var reader = RTMPChunkReader(maxMessageSize: 1 << 16)
    var messages: [RTMPMessage] = []
    // Feed in two pieces so partial chunks are exercised too.
    let split = bytes.count / 3
    do {
        messages += try reader.read(bytes[..<split])
        messages += try reader.read(bytes[split...])
        precondition(reader.buffered <= bytes.count, "the reader holds more than it was given")
    } catch {
        // A reader that threw is dropped with its connection.
    }
    for message in messages {
        precondition(message.payload.count <= 1 << 16, "a message over the limit got through")
        _ = try? AMF0.decode(message.payload[...])
    }
    _ = try? AMF0.decode(bytes[...])
    var session = RTMPPublishSession(endpoint: try! RTMPEndpoint(url: "rtmp://127.0.0.1/live", streamKey: "k"))
    var handshake = [UInt8](repeating: 3, count: 1 + 2 * RTMPHandshake.packetSize)
    handshake += bytes
    _ = try? session.receive(handshake)
}

runFuzzer(fuzzRTMP)
