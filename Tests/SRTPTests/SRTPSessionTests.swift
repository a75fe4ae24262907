import DTLS
import RTP
import SRTP
import Testing

@Suite("SRTP and SRTCP")
struct SRTPSessionTests {
    static func keys(_ profile: SRTPKeyingMaterial.Profile) -> SRTPKeyingMaterial {
        SRTPKeyingMaterial(profile: profile, localKey: (0..<16).map { UInt8($0) }, localSalt: (0..<profile.saltLength).map { UInt8(100 + $0) },
                           remoteKey: (0..<16).map { UInt8(200 - $0) }, remoteSalt: (0..<profile.saltLength).map { UInt8(50 + $0) })
    }

    static func rtp(sequence: UInt16, payload: [UInt8] = Array("hello, media".utf8)) -> [UInt8] {
        var builder = RTPPacketBuilder(payloadType: 96, sequenceNumber: sequence, timestamp: 90_000, ssrc: 0x1234_5678)
        builder.payload = payload
        return builder.serialize()
    }

    @Test("RTP protected by one side is restored by the other", arguments: [SRTPKeyingMaterial.Profile.aeadAES128GCM, .aes128CMSHA1_80])
    func roundTrip(profile: SRTPKeyingMaterial.Profile) throws {
        let sender = try SRTPSession(keys: Self.keys(profile))
        let receiver = try SRTPSession(keys: Self.keys(profile).mirrored)
        let plain = Self.rtp(sequence: 1)
        var packet = plain
        try sender.protectRTP(&packet)
        #expect(packet.count == plain.count + (profile == .aeadAES128GCM ? 16 : 10))
        #expect(Array(packet[12...]) != Array(plain[12...]) && Array(packet[..<12]) == Array(plain[..<12]))
        try receiver.unprotectRTP(&packet)
        #expect(packet == plain)
    }

    @Test("tampering and replay are refused; the sender may repeat a sequence number")
    func integrityAndReplay() throws {
        let sender = try SRTPSession(keys: Self.keys(.aeadAES128GCM))
        let receiver = try SRTPSession(keys: Self.keys(.aeadAES128GCM).mirrored)
        var first = Self.rtp(sequence: 7)
        try sender.protectRTP(&first)
        var tampered = first
        tampered[14] ^= 0x01
        #expect(throws: SRTPError.authenticationFailed) { try receiver.unprotectRTP(&tampered) }
        var copy = first
        try receiver.unprotectRTP(&copy)
        var replay = first
        #expect(throws: SRTPError.replayed) { try receiver.unprotectRTP(&replay) }
        var again = Self.rtp(sequence: 7)
        try sender.protectRTP(&again)
    }

    @Test("SRTCP round-trips a compound packet")
    func rtcp() throws {
        let sender = try SRTPSession(keys: Self.keys(.aes128CMSHA1_80))
        let receiver = try SRTPSession(keys: Self.keys(.aes128CMSHA1_80).mirrored)
        let plain: [UInt8] = [0x81, 0xc9, 0x00, 0x07, 0, 0, 0, 1] + Array(repeating: 3, count: 24)
        var packet = plain
        try sender.protectRTCP(&packet)
        #expect(packet.count > plain.count)
        try receiver.unprotectRTCP(&packet)
        #expect(packet == plain)
    }

    @Test("keys exported by a real DTLS handshake protect media end to end")
    func withDTLS() throws {
        let serverCertificate = try DTLSCertificate()
        let clientCertificate = try DTLSCertificate()
        let clientSession = try DTLSSession(context: DTLSContext(role: .client, certificate: clientCertificate), remoteFingerprint: serverCertificate.fingerprintSHA256)
        let serverSession = try DTLSSession(context: DTLSContext(role: .server, certificate: serverCertificate), remoteFingerprint: clientCertificate.fingerprintSHA256)
        var toServer = clientSession.start()
        var clientKeys: SRTPKeyingMaterial?
        var serverKeys: SRTPKeyingMaterial?
        for _ in 0..<10 where clientKeys == nil || serverKeys == nil {
            var toClient: [DTLSSession.Action] = []
            for case .send(let datagram) in toServer { toClient += serverSession.receive(datagram) }
            toServer = []
            for action in toClient {
                if case .send(let datagram) = action { toServer += clientSession.receive(datagram) }
                if case .connected(let keys) = action { serverKeys = keys }
            }
            for case .connected(let keys) in toServer { clientKeys = keys }
        }
        let browser = try SRTPSession(keys: try #require(clientKeys))
        let tally = try SRTPSession(keys: try #require(serverKeys))
        var packet = Self.rtp(sequence: 100)
        try browser.protectRTP(&packet)
        try tally.unprotectRTP(&packet)
        #expect(try RTPPacket(packet).sequenceNumber == 100)
    }

    @Test("a packet shorter than an RTP header is refused")
    func short() throws {
        var packet: [UInt8] = [0x80, 0x60]
        #expect(throws: SRTPError.tooShort) { try SRTPSession(keys: Self.keys(.aeadAES128GCM)).unprotectRTP(&packet) }
    }
}
