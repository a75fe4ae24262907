import FLV
import Testing

@testable import RTMP

/// Our publishing client and our server session talk to each other in memory.
private struct Conversation {
    var client: RTMPPublishSession
    var server = RTMPServerSession()
    var clientEvents: [RTMPPublishSession.Event] = []
    var serverEvents: [RTMPServerSession.Event] = []

    init(url: String = "rtmp://127.0.0.1/live", key: String = "secret-key") throws {
        client = RTMPPublishSession(endpoint: try RTMPEndpoint(url: url, streamKey: key))
    }

    /// Delivers bytes to the server and everything that follows from them, both ways, until quiet.
    mutating func toServer(_ bytes: [UInt8]) throws {
        var pendingToServer = bytes
        while !pendingToServer.isEmpty {
            var pendingToClient: [UInt8] = []
            for event in try server.receive(pendingToServer) {
                if case .send(let out) = event { pendingToClient += out } else { serverEvents.append(event) }
            }
            pendingToServer = []
            guard !pendingToClient.isEmpty else { break }
            for event in try client.receive(pendingToClient) {
                if case .send(let out) = event { pendingToServer += out } else { clientEvents.append(event) }
            }
        }
    }

    mutating func toClient(_ bytes: [UInt8]) throws {
        var back: [UInt8] = []
        for event in try client.receive(bytes) {
            if case .send(let out) = event { back += out } else { clientEvents.append(event) }
        }
        if !back.isEmpty { try toServer(back) }
    }
}

@Suite struct RTMPServerSessionTests {
    @Test func acceptsAPublishAndPassesMediaThrough() throws {
        var talk = try Conversation()
        try talk.toServer(talk.client.start())
        #expect(talk.server.phase == .authorizing)
        #expect(talk.serverEvents == [.publish(app: "live", streamKey: "secret-key", query: "")])
        // Media sent before the server decides is dropped, not kept.
        try talk.toServer(talk.client.media(type: .video, timestamp: 0, body: [0x17, 1, 0, 0, 0, 9]))
        #expect(talk.server.droppedBeforeLive == 1)
        try talk.toClient(talk.server.acceptPublish())
        #expect(talk.clientEvents == [.live])
        #expect(talk.server.phase == .live)
        talk.serverEvents = []
        try talk.toServer(talk.client.metadata([("width", .number(1280)), ("height", .number(720))]))
        try talk.toServer(talk.client.media(type: .video, timestamp: 40, body: [0x17, 1, 0, 0, 0, 1, 2, 3]))
        try talk.toServer(talk.client.media(type: .audio, timestamp: 41, body: [0xAF, 1, 7]))
        #expect(talk.serverEvents.count == 3)
        #expect(talk.serverEvents[0] == .metadata(["width": .number(1280), "height": .number(720)]))
        #expect(talk.serverEvents[1] == .media(.video, timestamp: 40, body: [0x17, 1, 0, 0, 0, 1, 2, 3]))
        #expect(talk.serverEvents[2] == .media(.audio, timestamp: 41, body: [0xAF, 1, 7]))
        try talk.toServer(talk.client.unpublish())
        #expect(talk.serverEvents.last == .unpublished)
    }

    @Test func aRejectedPublishReachesTheEncoderAsAnError() throws {
        var talk = try Conversation(key: "wrong?token=1")
        try talk.toServer(talk.client.start())
        #expect(talk.serverEvents == [.publish(app: "live", streamKey: "wrong", query: "token=1")])
        try talk.toClient(talk.server.rejectPublish(description: "unknown stream key"))
        #expect(talk.clientEvents == [.rejected(code: "NetStream.Publish.BadName", description: "unknown stream key")])
        #expect(talk.server.phase == .closed)
        #expect(try talk.server.receive([1, 2, 3]).isEmpty)
    }

    @Test func anUnknownApplicationIsRefusedAtConnect() throws {
        var talk = try Conversation(url: "rtmp://127.0.0.1/other/app")
        try talk.toServer(talk.client.start())
        guard case .rejected(let code, let description) = talk.clientEvents.first else {
            Issue.record("expected a rejection, got \(talk.clientEvents)")
            return
        }
        #expect(code == "NetConnection.Connect.Rejected" && description.contains("rtmp://HOST/live"))
        #expect(talk.server.phase == .closed)
        #expect(talk.serverEvents.contains { if case .close = $0 { true } else { false } })
    }

    @Test func theHandshakeEchoesC1AndRefusesOtherVersions() throws {
        var hello: [UInt8] = [3] + [UInt8](repeating: 0, count: 8) + (0..<1528).map { UInt8($0 & 0xFF) }
        #expect(try RTMPHandshake.serverReply(to: Array(hello.prefix(100))) == nil)
        let reply = try #require(try RTMPHandshake.serverReply(to: hello))
        #expect(reply.count == 1 + 2 * RTMPHandshake.packetSize && reply[0] == 3)
        #expect(Array(reply[(1 + RTMPHandshake.packetSize)...]) == Array(hello[1...]))
        hello[0] = 6
        #expect(throws: RTMPError.self) { try RTMPHandshake.serverReply(to: hello) }
    }

    @Test func aggregateMessagesSplitIntoTagsOnTheMessageClock() throws {
        func tag(_ type: UInt8, _ stamp: UInt32, _ body: [UInt8]) -> [UInt8] {
            let size = body.count
            return [type, UInt8(size >> 16), UInt8(size >> 8 & 0xFF), UInt8(size & 0xFF),
                    UInt8(stamp >> 16 & 0xFF), UInt8(stamp >> 8 & 0xFF), UInt8(stamp & 0xFF), UInt8(stamp >> 24), 0, 0, 0]
                + body + RTMPMessage.uint32(UInt32(size + 11))
        }
        let payload = tag(9, 5000, [0x17, 1, 0, 0, 0]) + tag(8, 5020, [0xAF, 1, 1])
        let events = try RTMPServerSession.splitAggregate(RTMPMessage(typeID: 22, streamID: 1, timestamp: 100, payload: payload))
        #expect(events == [.media(.video, timestamp: 100, body: [0x17, 1, 0, 0, 0]), .media(.audio, timestamp: 120, body: [0xAF, 1, 1])])
        #expect(throws: RTMPError.self) { try RTMPServerSession.splitAggregate(RTMPMessage(typeID: 22, streamID: 1, timestamp: 0, payload: Array(payload.prefix(25)))) }
    }

    @Test func unfinishedMessagesAreBounded() throws {
        var talk = try Conversation()
        talk.server = RTMPServerSession(maxBuffered: 64 << 10)
        try talk.toServer(talk.client.start())
        try talk.toClient(talk.server.acceptPublish())
        // Three chunk streams each start a 1 MiB message and never finish it.
        var writer = RTMPChunkWriter()
        writer.setChunkSize(30_000)
        var attack: [UInt8] = []
        for stream in UInt32(10)..<13 {
            var one: [UInt8] = []
            writer.write(RTMPMessage(typeID: 9, streamID: 1, timestamp: 0, payload: [UInt8](repeating: 0, count: 1 << 20)), chunkStream: stream, into: &one)
            attack += one.prefix(30_012)
        }
        var setChunk: [UInt8] = []
        writer.write(.setChunkSize(30_000), into: &setChunk)
        #expect(throws: RTMPError.self) { try talk.server.receive(setChunk + attack) }
    }

    @Test func appNamesLoseTrailingSlashesAndQueries() {
        #expect(RTMPServerSession.normalizedApp("live/") == "live")
        #expect(RTMPServerSession.normalizedApp("live?token=x") == "live")
        #expect(RTMPServerSession.normalizedApp("") == "")
    }
}
