import NIOCore
import RTCP
import RTP
import SDP

/// The green room's connection test: what a peer sends comes straight back to it, under our
/// own SSRCs, through the whole stack. NACKs are answered from a packet cache (as RTX when
/// negotiated); keyframe requests are relayed to the peer's own sender.
public final class EchoSink: MediaSink {
    private struct Track {
        let media: NegotiatedMedia
        let outgoing: LocalStream
        var cache = RTPPacketCache(capacity: 1024)
        var rtxSequence = UInt16.random(in: 0...UInt16.max)
        var remoteSSRC: UInt32?
        var lastKeyframeRequest: NIODeadline?
    }

    private var tracks: [String: Track] = [:]
    private var midBySSRC: [UInt32: String] = [:]
    private var midByPayloadType: [UInt8: String] = [:]
    private var midByOutgoingSSRC: [UInt32: String] = [:]
    private let midExtensionID: UInt8?

    public init(answer: SDPAnswer) {
        for media in answer.media where media.direction == .sendrecv {
            guard let outgoing = media.localStream else { continue }
            tracks[media.mid] = Track(media: media, outgoing: outgoing)
            midByPayloadType[media.codec.payloadType] = media.mid
            midByOutgoingSSRC[outgoing.ssrc] = media.mid
        }
        midExtensionID = answer.media.lazy.flatMap(\.headerExtensions).first { $0.uri == RTPHeaderExtensionURI.mid }?.id
    }

    /// What the echo asks of an offer: receive everything, and send one stream per section.
    public static func intent(for section: MediaDescription) -> MediaIntent {
        let mid = section.mid ?? "0"
        return MediaIntent(receive: true, send: LocalStream(
            ssrc: UInt32.random(in: 1...UInt32.max), rtxSSRC: section.mediaKind == .video ? UInt32.random(in: 1...UInt32.max) : nil,
            cname: "tally-echo", streamID: "tally-echo", trackID: "echo-\(section.kind)-\(mid)"))
    }

    public func sessionDidConnect(_ session: any MediaSession, transport: any MediaTransport) {}

    public func session(_ session: any MediaSession, didReceive packet: RTPPacket, transport: any MediaTransport) {
        guard let mid = mid(of: packet), var track = tracks[mid], packet.payloadType == track.media.codec.payloadType else { return }
        midBySSRC[packet.ssrc] = mid
        track.remoteSSRC = packet.ssrc
        let echoedBytes = packet.withSSRC(track.outgoing.ssrc)
        track.cache.store(echoedBytes, sequenceNumber: packet.sequenceNumber)
        tracks[mid] = track
        transport.sendRTP(echoedBytes, on: session)
    }

    public func session(_ session: any MediaSession, didReceive packets: [RTCPPacket], transport: any MediaTransport) {
        for packet in packets {
            switch packet {
            case .nack(let nack):
                guard let mid = midByOutgoingSSRC[nack.mediaSSRC] else { continue }
                for sequence in nack.lostSequenceNumbers { resend(sequence, mid: mid, session: session, transport: transport) }
            case .pictureLossIndication(_, let media):
                requestKeyframe(forOutgoing: media, session: session, transport: transport)
            case .fullIntraRequest(let fir):
                for entry in fir.entries { requestKeyframe(forOutgoing: entry.ssrc, session: session, transport: transport) }
            default:
                continue
            }
        }
    }

    public func sessionDidClose(_ session: any MediaSession, reason: String) {}

    private func mid(of packet: RTPPacket) -> String? {
        if let id = midExtensionID, let mid = RTPHeaderExtensionValue.token(packet.extensionValue(id: id)), tracks[mid] != nil { return mid }
        return midBySSRC[packet.ssrc] ?? midByPayloadType[packet.payloadType]
    }

    private func resend(_ sequence: UInt16, mid: String, session: any MediaSession, transport: any MediaTransport) {
        guard var track = tracks[mid], let cached = track.cache.packet(sequence), let original = try? RTPPacket(cached) else { return }
        if let rtx = track.media.retransmission, let rtxSSRC = track.outgoing.rtxSSRC {
            transport.sendRTP(original.retransmission(payloadType: rtx.payloadType, ssrc: rtxSSRC, sequenceNumber: track.rtxSequence), on: session)
            track.rtxSequence &+= 1
            tracks[mid] = track
        } else {
            transport.sendRTP(cached, on: session)
        }
    }

    /// The peer lost our echo's picture: ask its own sender for a keyframe, at most every 500 ms.
    private func requestKeyframe(forOutgoing ssrc: UInt32, session: any MediaSession, transport: any MediaTransport) {
        guard let mid = midByOutgoingSSRC[ssrc], var track = tracks[mid], let remote = track.remoteSSRC else { return }
        let now = NIODeadline.now()
        if let last = track.lastKeyframeRequest, now - last < .milliseconds(500) { return }
        track.lastKeyframeRequest = now
        tracks[mid] = track
        transport.sendRTCP([.pictureLossIndication(senderSSRC: track.outgoing.ssrc, mediaSSRC: remote)], on: session)
    }
}
