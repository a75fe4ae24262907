import FuzzDriver
import RTMP

/// Any bytes, as a server would send them to our push client or an encoder to our ingest:
/// the chunk reader, AMF0, the publish session and the server session (before and after a
/// publish is accepted) never trap, and buffering stays bounded.
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

    var server = RTMPServerSession(maxBuffered: 1 << 20)
    _ = try? server.receive(bytes)
    var live = RTMPServerSession(maxBuffered: 1 << 20)
    _ = try? live.receive(publishingClientBytes)
    precondition(live.phase == .authorizing, "the recorded client did not reach publish")
    _ = live.acceptPublish()
    _ = try? live.receive(Array(bytes[..<split]))
    _ = try? live.receive(Array(bytes[split...]))
}

/// Everything our own client sends up to its publish (handshake, connect, createStream,
/// publish), recorded once so the fuzzer's bytes reach a live server session.
let publishingClientBytes: [UInt8] = {
    var client = RTMPPublishSession(endpoint: try! RTMPEndpoint(url: "rtmp://127.0.0.1/live", streamKey: "k"))
    var server = RTMPServerSession()
    var sent = client.start()
    var pending = sent
    while !pending.isEmpty {
        var reply: [UInt8] = []
        for case .send(let out) in try! server.receive(pending) { reply += out }
        pending = []
        for case .send(let out) in try! client.receive(reply) { pending += out }
        sent += pending
    }
    return sent
}()

runFuzzer(fuzzRTMP)
