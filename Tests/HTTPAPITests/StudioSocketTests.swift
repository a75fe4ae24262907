import Foundation
import HTTPAPI
import Hummingbird
import HummingbirdTesting
import HummingbirdWSTesting
import Logging
import NIOConcurrencyHelpers
import NIOWebSocket
import TallyNode
import Testing
import WSClient

/// One studio socket in a test: sends JSON messages and waits for events by name.
final class StudioClient: Sendable {
    private let outgoing: AsyncStream<String>.Continuation
    /// Messages as they arrived, oldest first; `next` takes from the front.
    private let received = NIOLockedValueBox<[String]>([])
    let connection: Task<WebSocketCloseFrame?, any Error>

    init(_ client: any TestClientProtocol, token: String) {
        let (outgoingStream, outgoing) = AsyncStream<String>.makeStream()
        self.outgoing = outgoing
        let received = self.received
        connection = Task {
            try await client.ws("/ws?token=\(token)") { inbound, outbound, _ in
                let reader = Task {
                    for try await message in inbound.messages(maxSize: 1 << 21) {
                        if case .text(let text) = message { received.withLockedValue { $0.append(text) } }
                    }
                }
                for await text in outgoingStream { try await outbound.write(.text(text)) }
                try await outbound.close(.normalClosure, reason: nil)
                _ = try? await reader.value
            }
        }
    }

    func send(_ event: String, _ data: [String: Any] = [:], id: String? = nil) {
        var object: [String: Any] = ["event": event, "data": data]
        if let id { object["id"] = id }
        outgoing.yield(String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self))
    }

    func sendRaw(_ text: String) {
        outgoing.yield(text)
    }

    /// The oldest message named `event` (others stay for their own `next`); fails after `timeout`.
    func next(_ event: String, timeout: Duration = .seconds(10)) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        let marker = "\"event\":\"\(event)\""
        while ContinuousClock.now < deadline {
            let text = received.withLockedValue { list -> String? in
                guard let index = list.firstIndex(where: { $0.contains(marker) }) else { return nil }
                return list.remove(at: index)
            }
            if let text, let message = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] { return message }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("no \(event) within \(timeout)")
    }

    func close() {
        outgoing.finish()
    }
}

extension Dictionary where Key == String, Value == Any {
    var data: [String: Any] { self["data"] as? [String: Any] ?? [:] }
}

/// A live server (the WebSocket upgrade needs a real socket) on the test configuration.
func withLiveServer(_ test: @escaping @Sendable (APIClient, any TestClientProtocol, TallyNode) async throws -> Void) async throws {
    try await withServices(configure: { $0.httpPort = 0; $0.signalingResumeGrace = .seconds(2) }) { services in
        let app = try TallyServer.application(services: services.services)
        try await app.test(.live) { client in try await test(APIClient(client: client), client, services) }
    }
}

/// A broadcast whose host has joined on a socket, with an invite for a guest named Gina.
struct JoinedStudio {
    var broadcast: String
    var hostToken: String
    var guestToken: String
    var host: StudioClient
    var hostID: String

    static func open(_ api: APIClient, _ client: any TestClientProtocol) async throws -> JoinedStudio {
        let session = try await api.signUp()
        let broadcast = try await api.createBroadcast(session.accessToken)
        let invite = try await api.call(.post, "/api/broadcasts/\(broadcast)/invites", json: ["name": "Gina"], token: session.accessToken)
        let guestToken = try #require(invite["token"] as? String)
        let host = StudioClient(client, token: session.accessToken)
        host.send("join-broadcast", ["broadcast_id": broadcast])
        let hostID = try #require((try await host.next("joined").data["participant"] as? [String: Any])?["id"] as? String)
        return JoinedStudio(broadcast: broadcast, hostToken: session.accessToken, guestToken: guestToken, host: host, hostID: hostID)
    }

    /// The guest on a new socket, and its `joined` message.
    func joinGuest(_ client: any TestClientProtocol, resume: [String: Any]? = nil) async throws -> (socket: StudioClient, joined: [String: Any]) {
        let socket = StudioClient(client, token: guestToken)
        var data: [String: Any] = ["broadcast_id": broadcast]
        if let resume { data["resume"] = resume }
        socket.send("join-broadcast", data)
        return (socket, try await socket.next("joined"))
    }
}

@Suite("Studio signaling over /ws")
struct StudioSocketTests {
    @Test("host and guest join, chat reaches both, the host runs the stage, a guest cannot")
    func studio() async throws {
        try await withLiveServer { api, client, _ in
            let host = try await api.signUp()
            let id = try await api.createBroadcast(host.accessToken)
            let invite = try await api.call(.post, "/api/broadcasts/\(id)/invites", json: ["name": "Gina"], token: host.accessToken)
            let guestToken = try #require(invite["token"] as? String)

            let hostSocket = StudioClient(client, token: host.accessToken)
            #expect(try await hostSocket.next("welcome").data["protocol"] as? Int == 1)
            hostSocket.send("join-broadcast", ["broadcast_id": id], id: "j1")
            let hostJoined = try await hostSocket.next("joined")
            #expect(hostJoined["id"] as? String == "j1")
            let hostID = try #require((hostJoined.data["participant"] as? [String: Any])?["id"] as? String)
            #expect((hostJoined.data["participant"] as? [String: Any])?["role"] as? String == "host")

            let guestSocket = StudioClient(client, token: guestToken)
            guestSocket.send("join-broadcast", ["broadcast_id": id])
            let guestJoined = try await guestSocket.next("joined")
            let guestID = try #require((guestJoined.data["participant"] as? [String: Any])?["id"] as? String)
            #expect((guestJoined.data["participant"] as? [String: Any])?["name"] as? String == "Gina")
            #expect((guestJoined.data["participants"] as? [[String: Any]])?.count == 2)
            let arrived = try await hostSocket.next("participant-joined")
            #expect((arrived.data["participant"] as? [String: Any])?["id"] as? String == guestID)

            guestSocket.send("chat-message", ["text": "hello from backstage"])
            for socket in [hostSocket, guestSocket] {
                let chat = try await socket.next("chat-message")
                #expect(chat.data["text"] as? String == "hello from backstage" && chat.data["name"] as? String == "Gina")
            }

            guestSocket.send("stage-set", ["participants": [guestID]], id: "sneaky")
            let refused = try await guestSocket.next("error")
            #expect(refused.data["code"] as? String == "host_only" && refused["id"] as? String == "sneaky")

            hostSocket.send("stage-set", ["layout": "sidebar", "participants": [hostID, guestID], "banner": ["text": "Episode 1"]], id: "s1")
            #expect(try await hostSocket.next("ok")["id"] as? String == "s1")
            for socket in [hostSocket, guestSocket] {
                let stage = try await socket.next("stage-updated")
                #expect(stage.data["layout"] as? String == "sidebar" && stage.data["participants"] as? [String] == [hostID, guestID])
            }
            let read = try await api.call(.get, "/api/broadcasts/\(id)/stage", token: guestToken)
            #expect(read["participants"] as? [String] == [hostID, guestID])

            // The host's own encoder streams stand on stage too; anyone else's, or none, do not.
            hostSocket.send("stage-set", ["streams": ["nope"]], id: "s2")
            #expect(try await hostSocket.next("error").data["code"] as? String == "unknown_stream")
            _ = try await api.call(.post, "/api/streams", json: ["stream_id": "cam", "action": "start"], token: host.accessToken)
            hostSocket.send("stage-set", ["streams": ["cam"]], id: "s3")
            let placed = try await hostSocket.next("ok")
            #expect((placed.data["stage"] as? [String: Any])?["streams"] as? [String] == ["cam"])
            #expect(try await guestSocket.next("stage-updated").data["streams"] as? [String] == ["cam"])
            _ = try await hostSocket.next("stage-updated")

            hostSocket.send("mute-request", ["participant_id": guestID, "kind": "audio"])
            #expect(try await guestSocket.next("mute-request").data["kind"] as? String == "audio")

            hostSocket.send("go-live")
            #expect(try await guestSocket.next("broadcast-started").data["status"] as? String == "live")
            hostSocket.close()
            guestSocket.close()
        }
    }

    @Test("a guest whose socket drops comes back within the grace period with its place on stage")
    func resume() async throws {
        try await withLiveServer { api, client, _ in
            let studio = try await JoinedStudio.open(api, client)
            let (id, hostSocket) = (studio.broadcast, studio.host)
            var (guestSocket, joined) = try await studio.joinGuest(client)
            let guestID = try #require((joined.data["participant"] as? [String: Any])?["id"] as? String)
            let resumeToken = try #require(joined.data["resume_token"] as? String)
            hostSocket.send("stage-set", ["participants": [guestID]])
            _ = try await guestSocket.next("stage-updated")

            // The socket drops; it comes back inside the 2 s grace with the token.
            guestSocket.close()
            _ = try? await guestSocket.connection.value
            try await Task.sleep(for: .milliseconds(500))
            let (resumed, again) = try await studio.joinGuest(client, resume: ["participant_id": guestID, "token": resumeToken])
            guestSocket = resumed
            #expect((again.data["participant"] as? [String: Any])?["id"] as? String == guestID)
            #expect((again.data["stage"] as? [String: Any])?["participants"] as? [String] == [guestID])
            try await Task.sleep(for: .seconds(3))
            let stage = try await api.call(.get, "/api/broadcasts/\(id)/stage", token: studio.hostToken)
            #expect(stage["participants"] as? [String] == [guestID])

            // A forged token is refused; a drop without return frees the place after the grace.
            let intruder = StudioClient(client, token: studio.guestToken)
            intruder.send("join-broadcast", ["broadcast_id": id, "resume": ["participant_id": guestID, "token": "guess"]])
            #expect(try await intruder.next("error").data["code"] as? String == "resume_refused")
            intruder.close()
            guestSocket.close()
            let left = try await hostSocket.next("participant-left", timeout: .seconds(8))
            #expect(left.data["participant_id"] as? String == guestID)
            let after = try await api.call(.get, "/api/broadcasts/\(id)/stage", token: studio.hostToken)
            #expect((after["participants"] as? [String])?.isEmpty == true)
            hostSocket.close()
        }
    }

    @Test("a screen share is a source of its own: others see it arrive, it goes on stage, and leaves when stopped")
    func screenShare() async throws {
        try await withLiveServer { api, client, _ in
            let studio = try await JoinedStudio.open(api, client)
            let (hostSocket, hostID) = (studio.host, studio.hostID)
            let (guestSocket, _) = try await studio.joinGuest(client)

            hostSocket.send("webrtc-offer", ["sdp": "v=0", "source": "screen"], id: "early")
            #expect(try await hostSocket.next("error").data["code"] as? String == "not_sharing")
            hostSocket.send("screen-share-start", id: "share")
            let started = try await hostSocket.next("ok")
            let screen = try #require(started.data["participant"] as? [String: Any])
            let screenID = try #require(screen["id"] as? String)
            #expect(screen["screen_of"] as? String == hostID && (screen["name"] as? String)?.hasSuffix("(screen)") == true)
            let arrived = try await guestSocket.next("participant-joined")
            #expect((arrived.data["participant"] as? [String: Any])?["id"] as? String == screenID)
            hostSocket.send("screen-share-start", id: "again")
            #expect(try await hostSocket.next("error").data["code"] as? String == "already_sharing")

            hostSocket.send("stage-set", ["participants": [screenID, hostID]])
            let stage = try await guestSocket.next("stage-updated")
            #expect(stage.data["participants"] as? [String] == [screenID, hostID])

            hostSocket.send("screen-share-stop")
            let left = try await guestSocket.next("participant-left")
            #expect(left.data["participant_id"] as? String == screenID)
            let after = try await guestSocket.next("stage-updated")
            #expect(after.data["participants"] as? [String] == [hostID])
            hostSocket.close()
            guestSocket.close()
        }
    }

    @Test("bad input gets error events; no token, no upgrade")
    func refusals() async throws {
        try await withLiveServer { api, client, _ in
            let host = try await api.signUp()
            let socket = StudioClient(client, token: host.accessToken)
            _ = try await socket.next("welcome")
            socket.sendRaw("not json")
            #expect(try await socket.next("error").data["code"] as? String == "invalid_json")
            socket.send("chat-message", ["text": "hi"])
            #expect(try await socket.next("error").data["code"] as? String == "not_joined")
            socket.send("dance")
            #expect(try await socket.next("error").data["code"] as? String == "unknown_event")
            socket.send("join-broadcast", ["broadcast_id": UUID().uuidString])
            #expect(try await socket.next("error").data["code"] as? String == "broadcast_not_found")
            socket.close()

            let plain = try await api.call(.get, "/ws")
            #expect(plain.status == .unauthorized && plain.errorCode == "token_required")
            let badToken = try await api.call(.get, "/ws?token=nonsense")
            #expect(badToken.status == .unauthorized)
        }
    }
}
