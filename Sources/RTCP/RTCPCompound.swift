import MediaCore

/// Parsing and building compound RTCP datagrams (RFC 3550 §6.1).
public enum RTCPCompound {
    /// RFC 7983: RTCP packet types 192-223 share the 128-191 first-byte range with RTP;
    /// the second byte tells them apart (RFC 5761 §4).
    public static func looksLikeRTCP(_ bytes: some Collection<UInt8>) -> Bool {
        guard bytes.count >= 8 else { return false }
        let second = bytes[bytes.index(after: bytes.startIndex)]
        return (192...223).contains(second)
    }

    public static func parse(_ bytes: [UInt8]) throws(RTCPError) -> [RTCPPacket] {
        guard bytes.count >= 4 else { throw .tooShort(bytes.count) }
        var packets: [RTCPPacket] = []
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= 4 else { throw .tooShort(bytes.count - offset) }
            let first = bytes[offset]
            guard first >> 6 == 2 else { throw .badVersion(first >> 6) }
            let count = first & 0x1F
            let packetType = bytes[offset + 1]
            let length = ((Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])) + 1) * 4
            guard offset + length <= bytes.count else { throw .lengthOverrun(declared: length, available: bytes.count - offset) }
            var end = offset + length
            if first & 0x20 != 0 {
                let padding = Int(bytes[end - 1])
                guard padding > 0, padding <= length - 4 else { throw .malformed("padding") }
                end -= padding
            }
            packets.append(try parseOne(packetType: packetType, count: count, body: bytes[(offset + 4)..<end]))
            offset += length
        }
        return packets
    }

    private static func parseOne(packetType: UInt8, count: UInt8, body: ArraySlice<UInt8>) throws(RTCPError) -> RTCPPacket {
        var reader = ByteReader(body)
        switch packetType {
        case RTCPPacket.PacketType.senderReport:
            guard let ssrc = reader.uint32(), let ntpHigh = reader.uint32(), let ntpLow = reader.uint32(),
                  let rtp = reader.uint32(), let packets = reader.uint32(), let octets = reader.uint32() else { throw .malformed("sender report") }
            return .senderReport(SenderReport(
                ssrc: ssrc, ntpTimestamp: UInt64(ntpHigh) << 32 | UInt64(ntpLow), rtpTimestamp: rtp,
                packetCount: packets, octetCount: octets, reports: try reports(&reader, count: count)))
        case RTCPPacket.PacketType.receiverReport:
            guard let ssrc = reader.uint32() else { throw .malformed("receiver report") }
            return .receiverReport(ReceiverReport(ssrc: ssrc, reports: try reports(&reader, count: count)))
        case RTCPPacket.PacketType.sourceDescription:
            return .sourceDescription(try chunks(&reader, count: count))
        case RTCPPacket.PacketType.goodbye:
            var ssrcs: [UInt32] = []
            for _ in 0..<count {
                guard let ssrc = reader.uint32() else { throw .malformed("goodbye") }
                ssrcs.append(ssrc)
            }
            var reason: String?
            if let length = reader.uint8(), let text = reader.bytes(Int(length)) { reason = String(decoding: text, as: UTF8.self) }
            return .goodbye(Goodbye(ssrcs: ssrcs, reason: reason))
        case RTCPPacket.PacketType.transportFeedback, RTCPPacket.PacketType.payloadFeedback:
            guard let sender = reader.uint32(), let media = reader.uint32() else { throw .malformed("feedback header") }
            return try feedback(packetType: packetType, format: count, sender: sender, media: media, &reader)
        default:
            return .other(packetType: packetType, count: count, body: Array(body))
        }
    }

    private static func feedback(packetType: UInt8, format: UInt8, sender: UInt32, media: UInt32, _ reader: inout ByteReader) throws(RTCPError) -> RTCPPacket {
        switch (packetType, format) {
        case (RTCPPacket.PacketType.transportFeedback, 1):
            var pairs: [(packetID: UInt16, lostBitmask: UInt16)] = []
            while reader.remaining >= 4 {
                pairs.append((reader.uint16()!, reader.uint16()!))
            }
            guard !pairs.isEmpty else { throw .malformed("NACK without entries") }
            return .nack(GenericNACK(senderSSRC: sender, mediaSSRC: media, pairs: pairs))
        case (RTCPPacket.PacketType.transportFeedback, 15):
            return .transportFeedback(try TransportFeedback.parse(senderSSRC: sender, mediaSSRC: media, reader.bytes(reader.remaining) ?? []))
        case (RTCPPacket.PacketType.payloadFeedback, 1):
            return .pictureLossIndication(senderSSRC: sender, mediaSSRC: media)
        case (RTCPPacket.PacketType.payloadFeedback, 4):
            var entries: [(ssrc: UInt32, sequenceNumber: UInt8)] = []
            while reader.remaining >= 8 {
                let ssrc = reader.uint32()!
                let sequence = reader.uint8()!
                _ = reader.bytes(3)
                entries.append((ssrc, sequence))
            }
            return .fullIntraRequest(FullIntraRequest(senderSSRC: sender, entries: entries))
        case (RTCPPacket.PacketType.payloadFeedback, 15):
            // Application layer feedback: REMB identifies itself with "REMB".
            let start = reader
            if let tag = reader.bytes(4), Array(tag) == Array("REMB".utf8), let ssrcCount = reader.uint8(), let packed = reader.uint24() {
                let exponent = packed >> 18
                let mantissa = UInt64(packed & 0x3FFFF)
                var ssrcs: [UInt32] = []
                for _ in 0..<ssrcCount {
                    guard let ssrc = reader.uint32() else { throw .malformed("REMB SSRC list") }
                    ssrcs.append(ssrc)
                }
                return .remb(REMB(senderSSRC: sender, bitrate: exponent >= 46 ? UInt64.max : mantissa << exponent, ssrcs: ssrcs))
            }
            var rest = start
            return .other(packetType: packetType, count: format, body: sender.bytes + media.bytes + Array(rest.bytes(rest.remaining) ?? []))
        default:
            return .other(packetType: packetType, count: format, body: sender.bytes + media.bytes + Array(reader.bytes(reader.remaining) ?? []))
        }
    }

    private static func reports(_ reader: inout ByteReader, count: UInt8) throws(RTCPError) -> [ReceptionReport] {
        var reports: [ReceptionReport] = []
        for _ in 0..<count {
            guard let ssrc = reader.uint32(), let lossWord = reader.uint32(), let highest = reader.uint32(),
                  let jitter = reader.uint32(), let lsr = reader.uint32(), let dlsr = reader.uint32() else { throw .malformed("report block") }
            let rawLost = lossWord & 0xFF_FFFF
            let cumulative = rawLost & 0x80_0000 != 0 ? Int32(rawLost) - 0x100_0000 : Int32(rawLost)
            reports.append(ReceptionReport(
                ssrc: ssrc, fractionLost: UInt8(lossWord >> 24), cumulativeLost: cumulative,
                extendedHighestSequence: highest, jitter: jitter, lastSenderReport: lsr, delaySinceLastSenderReport: dlsr))
        }
        return reports
    }

    private static func chunks(_ reader: inout ByteReader, count: UInt8) throws(RTCPError) -> [SourceDescriptionChunk] {
        var chunks: [SourceDescriptionChunk] = []
        for _ in 0..<count {
            let chunkStart = reader.offset
            guard let ssrc = reader.uint32() else { throw .malformed("SDES chunk") }
            var items: [(type: UInt8, text: String)] = []
            while true {
                guard let type = reader.uint8() else { throw .malformed("SDES items") }
                if type == 0 { break }
                guard let length = reader.uint8(), let text = reader.bytes(Int(length)) else { throw .malformed("SDES item") }
                items.append((type, String(decoding: text, as: UTF8.self)))
            }
            // Each chunk ends on a 32-bit boundary.
            let used = reader.offset - chunkStart
            _ = reader.bytes((4 - used % 4) % 4)
            chunks.append(SourceDescriptionChunk(ssrc: ssrc, items: items))
        }
        return chunks
    }

    // MARK: Building

    public static func serialize(_ packets: [RTCPPacket]) -> [UInt8] {
        var out: [UInt8] = []
        for packet in packets { append(packet, to: &out) }
        return out
    }

    private static func append(_ packet: RTCPPacket, to out: inout [UInt8]) {
        let start = out.count
        out += [0, 0, 0, 0]
        let count: UInt8
        let packetType: UInt8
        switch packet {
        case .senderReport(let report):
            (count, packetType) = (UInt8(min(report.reports.count, 31)), RTCPPacket.PacketType.senderReport)
            out.appendUInt32(report.ssrc)
            out.appendUInt32(UInt32(report.ntpTimestamp >> 32))
            out.appendUInt32(UInt32(report.ntpTimestamp & 0xFFFF_FFFF))
            out.appendUInt32(report.rtpTimestamp)
            out.appendUInt32(report.packetCount)
            out.appendUInt32(report.octetCount)
            report.reports.prefix(31).forEach { appendReport($0, to: &out) }
        case .receiverReport(let report):
            (count, packetType) = (UInt8(min(report.reports.count, 31)), RTCPPacket.PacketType.receiverReport)
            out.appendUInt32(report.ssrc)
            report.reports.prefix(31).forEach { appendReport($0, to: &out) }
        case .sourceDescription(let chunks):
            (count, packetType) = (UInt8(min(chunks.count, 31)), RTCPPacket.PacketType.sourceDescription)
            for chunk in chunks.prefix(31) {
                let chunkStart = out.count
                out.appendUInt32(chunk.ssrc)
                for item in chunk.items {
                    let text = Array(item.text.utf8.prefix(255))
                    out.append(item.type)
                    out.append(UInt8(text.count))
                    out += text
                }
                out.append(0)
                while (out.count - chunkStart) % 4 != 0 { out.append(0) }
            }
        case .goodbye(let goodbye):
            (count, packetType) = (UInt8(min(goodbye.ssrcs.count, 31)), RTCPPacket.PacketType.goodbye)
            goodbye.ssrcs.prefix(31).forEach { out.appendUInt32($0) }
            if let reason = goodbye.reason {
                let text = Array(reason.utf8.prefix(255))
                out.append(UInt8(text.count))
                out += text
                while (out.count - start) % 4 != 0 { out.append(0) }
            }
        case .nack(let nack):
            (count, packetType) = (1, RTCPPacket.PacketType.transportFeedback)
            out.appendUInt32(nack.senderSSRC)
            out.appendUInt32(nack.mediaSSRC)
            for pair in nack.pairs {
                out.appendUInt16(pair.packetID)
                out.appendUInt16(pair.lostBitmask)
            }
        case .transportFeedback(let feedback):
            (count, packetType) = (15, RTCPPacket.PacketType.transportFeedback)
            out.appendUInt32(feedback.senderSSRC)
            out.appendUInt32(feedback.mediaSSRC)
            feedback.serializeBody(into: &out)
        case .pictureLossIndication(let sender, let media):
            (count, packetType) = (1, RTCPPacket.PacketType.payloadFeedback)
            out.appendUInt32(sender)
            out.appendUInt32(media)
        case .fullIntraRequest(let fir):
            (count, packetType) = (4, RTCPPacket.PacketType.payloadFeedback)
            out.appendUInt32(fir.senderSSRC)
            out.appendUInt32(0)
            for entry in fir.entries {
                out.appendUInt32(entry.ssrc)
                out += [entry.sequenceNumber, 0, 0, 0]
            }
        case .remb(let remb):
            (count, packetType) = (15, RTCPPacket.PacketType.payloadFeedback)
            out.appendUInt32(remb.senderSSRC)
            out.appendUInt32(0)
            out += Array("REMB".utf8)
            out.append(UInt8(min(remb.ssrcs.count, 255)))
            var exponent: UInt64 = 0
            while remb.bitrate >> exponent > 0x3FFFF { exponent += 1 }
            let mantissa = remb.bitrate >> exponent
            let packed = UInt32(exponent) << 18 | UInt32(mantissa)
            out += [UInt8(packed >> 16), UInt8((packed >> 8) & 0xFF), UInt8(packed & 0xFF)]
            remb.ssrcs.prefix(255).forEach { out.appendUInt32($0) }
        case .other(let type, let otherCount, let body):
            (count, packetType) = (otherCount & 0x1F, type)
            out += body
        }
        var padding = 0
        while (out.count - start) % 4 != 0 {
            out.append(0)
            padding += 1
        }
        if padding > 0 { out[out.count - 1] = UInt8(padding) }
        let words = (out.count - start) / 4 - 1
        out[start] = 0x80 | (padding > 0 ? 0x20 : 0) | count
        out[start + 1] = packetType
        out[start + 2] = UInt8(words >> 8)
        out[start + 3] = UInt8(words & 0xFF)
    }

    private static func appendReport(_ report: ReceptionReport, to out: inout [UInt8]) {
        out.appendUInt32(report.ssrc)
        out.appendUInt32(UInt32(report.fractionLost) << 24 | (UInt32(bitPattern: report.cumulativeLost) & 0xFF_FFFF))
        out.appendUInt32(report.extendedHighestSequence)
        out.appendUInt32(report.jitter)
        out.appendUInt32(report.lastSenderReport)
        out.appendUInt32(report.delaySinceLastSenderReport)
    }
}

extension UInt32 {
    var bytes: [UInt8] { [UInt8(self >> 24), UInt8((self >> 16) & 0xFF), UInt8((self >> 8) & 0xFF), UInt8(self & 0xFF)] }
}
