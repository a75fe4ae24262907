import DTLS
import Testing

@Suite("DTLS 1.2 over memory BIOs")
struct DTLSSessionTests {
    static let serverCertificate = try! DTLSCertificate()
    static let clientCertificate = try! DTLSCertificate()

    struct Pair {
        var client: DTLSSession
        var server: DTLSSession
    }

    func pair(clientExpects: String = serverCertificate.fingerprintSHA256, serverExpects: String = clientCertificate.fingerprintSHA256) throws -> Pair {
        Pair(
            client: try DTLSSession(context: DTLSContext(role: .client, certificate: Self.clientCertificate), remoteFingerprint: clientExpects),
            server: try DTLSSession(context: DTLSContext(role: .server, certificate: Self.serverCertificate), remoteFingerprint: serverExpects))
    }

    /// Delivers datagrams back and forth until both sides are quiet; returns what each ended with.
    func run(_ pair: Pair, drop: (Int, [UInt8]) -> Bool = { _, _ in false }) -> (client: [DTLSSession.Action], server: [DTLSSession.Action]) {
        var toServer = pair.client.start()
        var toClient: [DTLSSession.Action] = []
        var clientEvents: [DTLSSession.Action] = []
        var serverEvents: [DTLSSession.Action] = []
        var delivered = 0
        for _ in 0..<20 {
            var nextToClient: [DTLSSession.Action] = []
            for case .send(let datagram) in toServer {
                delivered += 1
                if drop(delivered, datagram) { continue }
                let actions = pair.server.receive(datagram)
                serverEvents += actions.filter { if case .send = $0 { return false } else { return true } }
                nextToClient += actions
            }
            var nextToServer: [DTLSSession.Action] = []
            for case .send(let datagram) in toClient + nextToClient {
                let actions = pair.client.receive(datagram)
                clientEvents += actions.filter { if case .send = $0 { return false } else { return true } }
                nextToServer += actions
            }
            toClient = []
            toServer = nextToServer
            if toServer.isEmpty && nextToClient.allSatisfy({ if case .send = $0 { return false } else { return true } }) { break }
        }
        return (clientEvents, serverEvents)
    }

    @Test("client and server agree on SRTP keys after a real handshake, with MTU-sized datagrams")
    func handshake() throws {
        let pair = try pair()
        var sizes: [Int] = []
        let (client, server) = run(pair) { _, datagram in sizes.append(datagram.count); return false }
        guard case .connected(let clientKeys)? = client.first, case .connected(let serverKeys)? = server.first else {
            Issue.record("not connected: client \(client), server \(server)")
            return
        }
        #expect(clientKeys.profile == .aeadAES128GCM)
        #expect(clientKeys.localKey == serverKeys.remoteKey && clientKeys.localSalt == serverKeys.remoteSalt)
        #expect(clientKeys.remoteKey == serverKeys.localKey && clientKeys.localKey != clientKeys.remoteKey)
        #expect(clientKeys.localSalt.count == 12)
        #expect(pair.client.isConnected && pair.server.isConnected)
        #expect(sizes.allSatisfy { $0 <= 1200 })
    }

    @Test("a certificate that does not match the SDP fingerprint fails the handshake")
    func fingerprintMismatch() throws {
        let wrong = Self.clientCertificate.fingerprintSHA256
        let (client, _) = run(try pair(clientExpects: wrong))
        #expect(client.contains { if case .failed(let reason) = $0 { return reason.contains("does not match") } else { return false } })
    }

    @Test("a lost flight is sent again when the timer fires")
    func retransmission() async throws {
        let pair = try pair()
        var flight = pair.client.start()
        #expect(!flight.isEmpty)
        let timeout = try #require(pair.client.retransmissionTimeout)
        #expect(timeout > .zero && timeout <= .seconds(1))
        try await Task.sleep(for: timeout + .milliseconds(50))
        flight = pair.client.handleTimeout()
        var connected = false
        for _ in 0..<10 {
            var replies: [DTLSSession.Action] = []
            for case .send(let datagram) in flight { replies += pair.server.receive(datagram) }
            flight = []
            for case .send(let datagram) in replies { flight += pair.client.receive(datagram) }
            if pair.client.isConnected && pair.server.isConnected { connected = true; break }
        }
        #expect(connected)
    }

    @Test("junk datagrams never reach OpenSSL and change nothing")
    func junk() throws {
        let pair = try pair()
        #expect(pair.server.receive([0x16, 0xFE, 0xFD, 0, 0]).isEmpty)
        #expect(pair.server.receive(Array(repeating: 0xFF, count: 40)).isEmpty)
        let (client, server) = run(pair)
        #expect(client.contains { if case .connected = $0 { return true } else { return false } })
        #expect(server.contains { if case .connected = $0 { return true } else { return false } })
    }

    @Test("certificates are P-256 with a SHA-256 fingerprint in SDP form, different each time")
    func certificate() throws {
        let fingerprint = Self.serverCertificate.fingerprintSHA256
        #expect(fingerprint.count == 32 * 3 - 1)
        #expect(fingerprint.allSatisfy { $0 == ":" || $0.isHexDigit })
        #expect(try DTLSCertificate().fingerprintSHA256 != fingerprint)
    }
}

@Suite("DTLS records and handshake headers")
struct DTLSRecordTests {
    static let clientHelloRecord: [UInt8] = [
        0x16, 0xFE, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0E, // handshake, DTLS 1.0, epoch 0, seq 0, len 14
        0x01, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, // ClientHello, len 2, seq 0, offset 0, fragment 2
        0xFE, 0xFD,
    ]

    @Test("records split and their handshake headers parse")
    func split() throws {
        let datagram = Self.clientHelloRecord + Self.clientHelloRecord
        let records = try DTLSRecord.split(datagram)
        #expect(records.count == 2 && records[1].range == 27..<54)
        let header = try DTLSHandshakeHeader.parse(datagram[(records[0].range.lowerBound + 13)..<records[0].range.upperBound])
        #expect(header.messageType == 1 && header.length == 2 && header.fragmentLength == 2)
    }

    @Test("packetizing never splits a record and keeps datagrams under the MTU")
    func packetize() throws {
        let stream = Array(repeating: Self.clientHelloRecord, count: 10).flatMap { $0 }
        let datagrams = try DTLSRecord.packetize(stream, mtu: 100)
        #expect(datagrams.map(\.count) == [81, 81, 81, 27])
        #expect(datagrams.flatMap { $0 } == stream)
    }

    @Test("malformed records are refused", arguments: [
        [UInt8](repeating: 0x16, count: 5),
        [0x16, 0x03, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [0x16, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 1],
        [0x80, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ])
    func malformed(bytes: [UInt8]) {
        #expect(throws: DTLSError.self) { try DTLSRecord.split(bytes) }
    }

    @Test("a fragment reaching outside its message is refused")
    func badFragment() {
        let header: [UInt8] = [0x01, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x02, 0xAA, 0xBB]
        #expect(throws: DTLSError.self) { try DTLSHandshakeHeader.parse(header[...]) }
    }
}
