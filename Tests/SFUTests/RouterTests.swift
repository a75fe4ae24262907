import Logging
import MediaPlane
import NIOCore
import NIOPosix
import RTCP
import RTP
@testable import SDP
import Testing
@testable import SFU

/// A transport that sends nothing anywhere: it keeps what each session was sent, and runs a
/// fan-out as one range on the calling thread.
final class RecordingTransport: MediaTransport, MediaLane, @unchecked Sendable {
    final class Session: MediaSession {
        let id: SessionID
        init(_ id: String) { self.id = SessionID(id) }
    }

    let loop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()
    var now: Duration { .zero }
    let protectionOverhead = 0
    let maxMediaSections = 16
    let allowsLossInjection = false
    private(set) var rtp: [SessionID: [RTPPacket]] = [:]
    private(set) var rtcp: [SessionID: [RTCPPacket]] = [:]
    private(set) var fanOuts: [Int] = []

    func open(tag: String, owner: SessionOwner, negotiate: @escaping @Sendable (LocalTransportParameters) throws -> SDPAnswer,
              makeSink: @escaping @Sendable (SDPAnswer) -> any MediaSink) async throws -> (id: SessionID, answer: SDPAnswer) {
        throw MediaTransportError.tooManySessionsForOwner(limit: 0)
    }

    func close(sessionID: SessionID, tag: String?, identity: String?, reason: String) async -> Bool { false }
    func close(tag: String, reason: String) async -> Int { 0 }
    func close(identity: String, reason: String) async -> Int { 0 }
    func sessionCount(tag: String) async -> Int { 0 }
    func setEgressLoss(sessionID: SessionID, probability: Double) async -> Bool { false }
    func sendRTP(_ packet: ByteBuffer, on session: any MediaSession) {
        rtp[session.id, default: []].append(try! RTPPacket(Array(packet.readableBytesView)))
    }
    func sendRTCP(_ packets: [RTCPPacket], on session: any MediaSession) { rtcp[session.id, default: []] += packets }
    func fanOut(count: Int, _ body: (any MediaLane, Range<Int>) -> Void) -> Int {
        fanOuts.append(count)
        body(self, 0..<count)
        return 0
    }
    func flushOutgoing() {}

    func sendRTP(on session: any MediaSession, capacity: Int, _ build: (UnsafeMutableRawBufferPointer) -> Int?) {
        let bytes = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
            count = build(UnsafeMutableRawBufferPointer(buffer)) ?? 0
        }
        if !bytes.isEmpty { rtp[session.id, default: []].append(try! RTPPacket(bytes)) }
    }

    func pictureLossRequests(on session: RecordingTransport.Session) -> [UInt32] {
        (rtcp[session.id] ?? []).compactMap { if case .pictureLossIndication(_, let ssrc) = $0 { ssrc } else { nil } }
    }
}

@Suite("Router: routing a producer's packets to its consumers")
struct RouterTests {
    private static func subscriberAnswer(ssrc: UInt32) -> SDPAnswer {
        var media = ConsumerTests.subscriberMedia
        media.localStream = LocalStream(ssrc: ssrc, rtxSSRC: ssrc + 1, cname: "c", streamID: "s", trackID: "t")
        return SDPAnswer(description: SessionDescription(origin: .init(username: "-", sessionID: "1", sessionVersion: 1, address: "127.0.0.1")),
                         media: [media], remoteIceUsernameFragment: "u", remoteIcePassword: "p",
                         remoteFingerprint: ("sha-256", "00"), dtlsClient: false)
    }

    @Test("one packet fans out to every consumer under its own SSRC; keyframes are asked for once per interval")
    func fanOut() throws {
        let transport = RecordingTransport()
        let router = Router(id: "b")
        let publisher = RecordingTransport.Session("publisher")
        let producer = Producer(id: Publisher.producerID, media: Publisher.media)
        router.add(producer, publisher: publisher, transport: transport)
        var subscribers: [RecordingTransport.Session] = []
        for (index, ssrc) in [UInt32(7000), 9000].enumerated() {
            let session = RecordingTransport.Session("subscriber-\(index)")
            let sink = SubscriberSink(answer: Self.subscriberAnswer(ssrc: ssrc), producers: ["0": Publisher.producerID], router: router,
                                      clock: { .zero }, logger: Logger(label: "router-test"), onClose: {})
            sink.sessionDidConnect(session, transport: transport)
            subscribers.append(session)
        }
        // A consumer asks for a keyframe when it joins, but a layer not yet seen has no SSRC to ask on.
        #expect(transport.pictureLossRequests(on: publisher).isEmpty)

        func route(_ packet: RTPPacket, at ms: Int) {
            let arrival = producer.receive(packet, now: .milliseconds(ms))!
            router.route(arrival, from: producer, transport: transport, now: .milliseconds(ms))
        }
        // Only the low layer flows: nothing goes out before its keyframe, which is asked for.
        route(Publisher.packet(rid: "l", sequence: 1, timestamp: 100), at: 400)
        #expect(transport.rtp.isEmpty && transport.fanOuts == [2])
        #expect(transport.pictureLossRequests(on: publisher) == [Publisher.ssrcs["l"]!])
        // Asked once per interval, however many consumers wait.
        route(Publisher.packet(rid: "l", sequence: 2, timestamp: 100), at: 450)
        #expect(transport.pictureLossRequests(on: publisher) == [Publisher.ssrcs["l"]!])

        route(Publisher.packet(rid: "l", sequence: 3, timestamp: 3100, keyframe: true), at: 500)
        route(Publisher.packet(rid: "l", sequence: 4, timestamp: 6100), at: 533)
        for (session, ssrc) in zip(subscribers, [UInt32(7000), 9000]) {
            let sent = try #require(transport.rtp[session.id])
            #expect(sent.count == 2 && sent.allSatisfy { $0.ssrc == ssrc && $0.payloadType == 100 })
            #expect(sent[1].sequenceNumber == sent[0].sequenceNumber &+ 1 && sent[1].timestamp == sent[0].timestamp &+ 3000)
        }
        #expect(transport.fanOuts == [2, 2, 2, 2])
        #expect(router.publishingParticipants == [Publisher.producerID.participant])

        // A consumer removed gets nothing more; a producer removed routes to nobody.
        router.remove(consumer: "\(Publisher.producerID)->7000")
        route(Publisher.packet(rid: "l", sequence: 5, timestamp: 9100), at: 566)
        #expect(transport.rtp[subscribers[0].id]?.count == 2 && transport.rtp[subscribers[1].id]?.count == 3)
        router.remove(producer: Publisher.producerID)
        #expect(!router.publishingParticipants.contains(Publisher.producerID.participant))
    }

    @Test("the router's own tick names the active speaker, at most every 300 ms")
    func speakerTick() {
        final class Heard: @unchecked Sendable { var speakers: [ParticipantID?] = [] }
        let heard = Heard()
        let router = Router(id: "b", onActiveSpeaker: { heard.speakers.append($0) })
        let loud = ProducerID(participant: ParticipantID("loud"), mid: "0")
        // Levels are -dBov: smaller is louder.
        for ms in stride(from: 0, through: 900, by: 20) { router.recordAudioLevel(producer: loud, level: 20, now: .milliseconds(ms)) }
        router.tick(now: .milliseconds(1000))
        #expect(heard.speakers == [ParticipantID("loud")])
        router.tick(now: .milliseconds(1100))
        #expect(heard.speakers.count == 1)
        // Silence: after the window has passed with nothing loud, nobody speaks.
        router.tick(now: .milliseconds(3000))
        #expect(heard.speakers == [ParticipantID("loud"), nil])
    }
}
