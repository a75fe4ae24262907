import ICE
import STUN
import Testing

@Suite("ICE-lite agent (RFC 8445 §2.5, RFC 7675) with injected time")
struct ICELiteAgentTests {
    static let browserUDP = ICEPath(.udp, TransportAddress(ip: [192, 0, 2, 10], port: 50000))
    static let browserWiFi = ICEPath(.udp, TransportAddress(ip: [198, 51, 100, 7], port: 61000))

    func agent() -> ICELiteAgent {
        ICELiteAgent(localUsernameFragment: "srv1", localPassword: "server-password-0123456789", remoteUsernameFragment: "brw9", now: .zero)
    }

    /// A check as a browser sends it: controlling, with priority, integrity and fingerprint.
    func check(username: String = "srv1:brw9", password: String = "server-password-0123456789", useCandidate: Bool = false,
               controlled: Bool = false, extra: [STUNAttribute] = [], fingerprint: Bool = true) -> ReceivedSTUNMessage {
        var attributes: [STUNAttribute] = [.username(username), .priority(1_845_501_695),
                                           controlled ? .iceControlled(7) : .iceControlling(0xDEAD_BEEF)]
        if useCandidate { attributes.append(.useCandidate) }
        attributes += extra
        let bytes = STUNCodec.encode(STUNMessage(type: .bindingRequest, transactionID: .random(), attributes: attributes),
                                     integrityKey: Array(password.utf8), fingerprint: fingerprint)
        return try! STUNCodec.parse(bytes)
    }

    @Test("a valid check is answered with the source address, signed with our password")
    func answersCheck() throws {
        var agent = agent()
        let request = check()
        let actions = agent.receive(request, from: Self.browserUDP, now: .seconds(1))
        guard case .send(let bytes, let path) = try #require(actions.first) else { Issue.record("no response"); return }
        #expect(path == Self.browserUDP)
        let response = try STUNCodec.parse(bytes)
        #expect(response.message.type == .bindingSuccess)
        #expect(response.message.transactionID == request.message.transactionID)
        #expect(response.message.xorMappedAddress == Self.browserUDP.address)
        try response.verifyIntegrity(key: Array("server-password-0123456789".utf8))
        #expect(agent.state == .waiting && agent.isValidated(Self.browserUDP))
    }

    @Test("USE-CANDIDATE selects the path; a later nomination elsewhere moves the session")
    func nomination() {
        var agent = agent()
        #expect(agent.receive(check(useCandidate: true), from: Self.browserUDP, now: .seconds(1)).contains(.select(Self.browserUDP)))
        #expect(agent.selectedPath == Self.browserUDP)
        #expect(!agent.receive(check(useCandidate: true), from: Self.browserUDP, now: .seconds(2)).contains(.select(Self.browserUDP)))
        #expect(agent.receive(check(useCandidate: true), from: Self.browserWiFi, now: .seconds(3)).contains(.select(Self.browserWiFi)))
        #expect(agent.selectedPath == Self.browserWiFi)
    }

    @Test("unauthenticated or foreign checks get no reply at all", arguments: [
        ("srv1:brw9", "wrong-password-wrong-password", true),
        ("other:brw9", "server-password-0123456789", true),
        ("srv1:someone", "server-password-0123456789", true),
        ("srv1:brw9", "server-password-0123456789", false),
    ])
    func silentDrop(username: String, password: String, fingerprint: Bool) {
        var agent = agent()
        #expect(agent.receive(check(username: username, password: password, fingerprint: fingerprint), from: Self.browserUDP, now: .seconds(1)).isEmpty)
        #expect(!agent.isValidated(Self.browserUDP))
    }

    @Test("unknown comprehension-required attributes get 420 with the list; a controlled peer gets 487")
    func errors() throws {
        var agent = agent()
        let unknown = agent.receive(check(extra: [STUNAttribute(type: STUNAttributeType(rawValue: 0x0077), value: [1])]), from: Self.browserUDP, now: .seconds(1))
        guard case .send(let bytes, _) = try #require(unknown.first) else { Issue.record("no 420"); return }
        let response = try STUNCodec.parse(bytes).message
        #expect(response.errorCode?.code == 420 && response.attribute(.unknownAttributes)?.value == [0x00, 0x77])
        let conflict = agent.receive(check(controlled: true), from: Self.browserUDP, now: .seconds(1))
        guard case .send(let conflictBytes, _) = try #require(conflict.first) else { Issue.record("no 487"); return }
        #expect(try STUNCodec.parse(conflictBytes).message.errorCode?.code == 487)
        #expect(agent.state == .waiting)
    }

    @Test("consent lapses 30 s after the last check on the selected path")
    func consent() {
        var agent = agent()
        _ = agent.receive(check(useCandidate: true), from: Self.browserUDP, now: .seconds(1))
        for second in stride(from: 5, through: 25, by: 5) {
            _ = agent.receive(check(), from: Self.browserUDP, now: .seconds(second))
            #expect(agent.tick(now: .seconds(second)).isEmpty)
        }
        #expect(agent.tick(now: .seconds(54)).isEmpty)
        let closing = agent.tick(now: .seconds(55))
        #expect(closing.count == 1)
        guard case .closed = agent.state else { Issue.record("still open"); return }
        #expect(agent.receive(check(), from: Self.browserUDP, now: .seconds(56)).isEmpty)
    }

    @Test("a session with no valid check is given up after 30 s")
    func connectTimeout() {
        var agent = agent()
        #expect(agent.tick(now: .seconds(29)).isEmpty)
        #expect(agent.tick(now: .seconds(30)).count == 1)
    }

    @Test("the local fragment routes a check to its session")
    func routing() {
        #expect(ICELiteAgent.localUsernameFragment(ofRequest: check().message) == "srv1")
        #expect(ICELiteAgent.localUsernameFragment(ofRequest: STUNMessage(type: .bindingRequest, transactionID: .random())) == nil)
    }
}

@Suite("ICE-TCP framing (RFC 4571) and candidates")
struct ICETCPTests {
    @Test("frames come out whole however the stream is split")
    func framing() {
        let packets: [[UInt8]] = [[1, 2, 3], [], Array(repeating: 9, count: 1500), [4]]
        let stream = packets.flatMap(ICETCPFramer.frame)
        for chunk in [1, 2, 5, 1000, stream.count] {
            var framer = ICETCPFramer()
            var out: [[UInt8]] = []
            var offset = 0
            while offset < stream.count {
                out += framer.feed(stream[offset..<min(offset + chunk, stream.count)])
                offset += chunk
            }
            #expect(out == packets, "chunk \(chunk)")
            #expect(framer.bufferedBytes == 0)
        }
    }

    @Test("candidate lines carry RFC 8445 priorities, UDP above TCP")
    func candidates() {
        #expect(ICECandidate.hostUDP(ip: "203.0.113.5", port: 7882) == "1 1 udp 2130706431 203.0.113.5 7882 typ host")
        #expect(ICECandidate.hostTCPPassive(ip: "203.0.113.5", port: 7881) == "2 1 tcp 2122317823 203.0.113.5 7881 typ host tcptype passive")
    }
}
