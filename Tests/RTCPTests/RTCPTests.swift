import Testing
@testable import RTCP

@Suite("RTCP compound packets and feedback")
struct RTCPTests {
    static let report = ReceptionReport(ssrc: 0x1111, fractionLost: 25, cumulativeLost: -3, extendedHighestSequence: 70_000,
                                        jitter: 12, lastSenderReport: 0xABCD_0000, delaySinceLastSenderReport: 65536)

    @Test("every packet kind round-trips through a compound", arguments: [
        RTCPPacket.senderReport(SenderReport(ssrc: 1, ntpTimestamp: 0xE1A2_B3C4_D5E6_F708, rtpTimestamp: 90000, packetCount: 10, octetCount: 12000, reports: [report])),
        .receiverReport(ReceiverReport(ssrc: 2, reports: [report, report])),
        .receiverReport(ReceiverReport(ssrc: 2)),
        .sourceDescription([SourceDescriptionChunk(ssrc: 3, cname: "tally-abc"), SourceDescriptionChunk(ssrc: 4, cname: "x")]),
        .goodbye(Goodbye(ssrcs: [5, 6], reason: "leaving")),
        .goodbye(Goodbye(ssrcs: [7])),
        .nack(GenericNACK(senderSSRC: 1, mediaSSRC: 2, lost: [100, 101, 105, 116, 117, 200])),
        .pictureLossIndication(senderSSRC: 1, mediaSSRC: 2),
        .fullIntraRequest(FullIntraRequest(senderSSRC: 1, entries: [(2, 7), (3, 255)])),
        .remb(REMB(senderSSRC: 1, bitrate: 1_500_000, ssrcs: [2, 3])),
        .other(packetType: 204, count: 3, body: [1, 2, 3, 4, 5, 6, 7, 8]),
    ])
    func roundTrip(packet: RTCPPacket) throws {
        let bytes = RTCPCompound.serialize([packet, .pictureLossIndication(senderSSRC: 9, mediaSSRC: 9)])
        #expect(bytes.count % 4 == 0)
        #expect(RTCPCompound.looksLikeRTCP(bytes))
        let parsed = try RTCPCompound.parse(bytes)
        #expect(parsed == [packet, .pictureLossIndication(senderSSRC: 9, mediaSSRC: 9)])
    }

    @Test("a NACK packs nearby losses into one (PID, BLP) pair, across the wrap")
    func nackPacking() {
        let nack = GenericNACK(senderSSRC: 1, mediaSSRC: 2, lost: [65534, 65535, 0, 1, 40])
        #expect(nack.pairs.count == 2)
        #expect(nack.pairs[0].packetID == 65534 && nack.pairs[0].lostBitmask == 0b111)
        #expect(nack.lostSequenceNumbers == [65534, 65535, 0, 1, 40])
    }

    @Test("REMB keeps 18 bits of mantissa", arguments: [UInt64(0), 1, 262_143, 262_144, 2_500_000, 1_000_000_000])
    func rembPrecision(bitrate: UInt64) throws {
        let parsed = try RTCPCompound.parse(RTCPCompound.serialize([.remb(REMB(senderSSRC: 1, bitrate: bitrate, ssrcs: [2]))]))
        guard case .remb(let remb) = parsed.first else { Issue.record("not REMB"); return }
        #expect(remb.bitrate <= bitrate && bitrate - remb.bitrate <= bitrate >> 17)
    }

    @Test("transport-cc feedback round-trips lost packets, small and large deltas, long runs")
    func transportFeedback() throws {
        var packets: [TransportFeedback.PacketStatus] = []
        for index in 0..<40 { packets.append(.init(sequenceNumber: UInt16(truncatingIfNeeded: 65530 + index), delta: index % 9 == 4 ? nil : Int16(index % 5))) }
        packets.append(.init(sequenceNumber: 65530 &+ 40, delta: 1000))
        packets.append(.init(sequenceNumber: 65530 &+ 41, delta: -20))
        packets.append(.init(sequenceNumber: 65530 &+ 42, delta: nil))
        for index in 43..<60 { packets.append(.init(sequenceNumber: UInt16(truncatingIfNeeded: 65530 + index), delta: 2)) }
        let feedback = TransportFeedback(senderSSRC: 1, mediaSSRC: 2, baseSequenceNumber: 65530, referenceTime: -5, feedbackCount: 9, packets: packets)
        let parsed = try RTCPCompound.parse(RTCPCompound.serialize([.transportFeedback(feedback)]))
        #expect(parsed == [.transportFeedback(feedback)])
    }

    @Test("a Chrome-shaped transport-cc packet with a run-length chunk decodes")
    func chromeTransportFeedback() throws {
        let bytes: [UInt8] = [
            0x8f, 0xcd, 0x00, 0x06, // V=2 P=0 FMT=15 PT=205 length=6 (7 words)
            0x00, 0x00, 0x00, 0x01, // sender SSRC
            0x00, 0x00, 0x00, 0x02, // media SSRC
            0x00, 0x0a, 0x00, 0x03, // base seq 10, 3 packets
            0x00, 0x00, 0x10, 0x04, // reference time 16, fb count 4
            0x20, 0x03, 0x04, 0x08, // run chunk: symbol 1 x3; deltas 4, 8
            0x0c, 0x00, 0x00, 0x00, // delta 12, padding (zeros)
        ]
        guard case .transportFeedback(let feedback) = try RTCPCompound.parse(bytes).first else { Issue.record("not transport-cc"); return }
        #expect(feedback.referenceTime == 16 && feedback.feedbackCount == 4)
        #expect(feedback.packets.map(\.delta) == [4, 8, 12])
        #expect(feedback.packets.map(\.sequenceNumber) == [10, 11, 12])
    }

    @Test("malformed compounds are clear errors", arguments: [
        ([UInt8](), RTCPError.tooShort(0)),
        ([0x40, 0xc8, 0x00, 0x00], .badVersion(1)),
        ([0x80, 0xc9, 0x00, 0x05, 0, 0, 0, 1], .lengthOverrun(declared: 24, available: 8)),
        ([0x81, 0xc8, 0x00, 0x01, 0, 0, 0, 1], .malformed("sender report")),
        ([0x81, 0xcd, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2], .malformed("NACK without entries")),
        ([0x8f, 0xcd, 0x00, 0x03, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 9], .malformed("transport-cc header")),
        ([0xa0, 0xc9, 0x00, 0x01, 0, 0, 0, 9], .malformed("padding")),
    ])
    func malformed(bytes: [UInt8], error: RTCPError) {
        #expect(throws: error) { try RTCPCompound.parse(bytes) }
    }
}

@Suite("Reception statistics and report blocks (RFC 3550 A.3, A.8)")
struct ReceptionStatisticsTests {
    @Test("loss, fraction lost per interval and extended highest sequence, across the wrap")
    func loss() throws {
        var stats = ReceptionStatistics(clockRate: 90000)
        var sequence: UInt16 = 65530
        for index in 0..<20 {
            if index != 7 && index != 8 { stats.record(sequence: sequence, timestamp: UInt32(index) * 3000, arrival: .milliseconds(index * 33)) }
            sequence &+= 1
        }
        let first = stats.report(ssrc: 5, now: .seconds(1))
        let report = try #require(first)
        #expect(report.cumulativeLost == 2 && report.fractionLost == UInt8((2 << 8) / 20))
        #expect(report.extendedHighestSequence == 65530 + 19)
        for _ in 0..<10 {
            stats.record(sequence: sequence, timestamp: 0, arrival: .seconds(1))
            sequence &+= 1
        }
        let second = stats.report(ssrc: 5, now: .seconds(2))
        #expect(second?.fractionLost == 0)
    }

    @Test("jitter stays near zero for evenly paced packets and grows when arrivals wobble")
    func jitter() {
        var steady = ReceptionStatistics(clockRate: 90000)
        var wobbly = ReceptionStatistics(clockRate: 90000)
        for index in 0..<200 {
            steady.record(sequence: UInt16(index), timestamp: UInt32(index * 3000), arrival: .microseconds(Int64(index) * 33_333))
            let wobble: Int64 = index % 2 == 0 ? 0 : 10_000
            wobbly.record(sequence: UInt16(index), timestamp: UInt32(index * 3000), arrival: .microseconds(Int64(index) * 33_333 + wobble))
        }
        #expect(steady.jitter < 5)
        #expect(wobbly.jitter > 700 && wobbly.jitter < 1000) // ~10 ms at 90 kHz
    }

    @Test("LSR and DLSR describe the last sender report, and give back the round trip")
    func roundTrip() throws {
        var stats = ReceptionStatistics(clockRate: 48000)
        stats.record(sequence: 1, timestamp: 0, arrival: .zero)
        let sentAt = NTPTime.from(unixSeconds: 1_700_000_000.25)
        stats.recordSenderReport(ntpTimestamp: sentAt, arrival: .seconds(10))
        let made = stats.report(ssrc: 1, now: .milliseconds(10_500))
        let report = try #require(made)
        #expect(report.lastSenderReport == UInt32(truncatingIfNeeded: sentAt >> 16))
        #expect(report.delaySinceLastSenderReport == 32768)
        // The report reaches the sender 40 ms of network after the 500 ms hold, 20 ms each way.
        let arrival = NTPTime.from(unixSeconds: 1_700_000_000.25 + 0.02 + 0.5 + 0.02)
        let rtt = try #require(NTPTime.roundTrip(arrivalNTP: arrival, lastSenderReport: report.lastSenderReport, delaySinceLastSenderReport: report.delaySinceLastSenderReport))
        #expect(abs((rtt - .milliseconds(40)).seconds) < 0.001)
    }
}
