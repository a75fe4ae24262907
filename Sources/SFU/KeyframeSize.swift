import FLV
import RTP

/// The picture size a keyframe's first packet declares, read where each codec puts it: the
/// VP8 keyframe header (RFC 6386 §9.1) and the H.264 sequence parameter set, alone or in a
/// STAP-A. The router learns each simulcast layer's size from it, so the program can decode
/// the smallest layer that fills its tile. Nil for other codecs and packets without it.
enum KeyframeSize {
    static func of(_ packet: RTPPacket, codec: String) -> PictureSize? {
        switch codec.uppercased() {
        case "VP8": vp8(packet.payload)
        case "H264": h264(packet.payload)
        default: nil
        }
    }

    private static func vp8(_ payload: ArraySlice<UInt8>) -> PictureSize? {
        guard let descriptor = VP8Descriptor.parse(payload), descriptor.isKeyframe else { return nil }
        let frame = payload.dropFirst(descriptor.payloadOffset)
        // A 3-byte frame tag, the start code 9d 01 2a, then width and height: 14 bits each, little-endian.
        guard frame.count >= 10 else { return nil }
        let start = frame.startIndex
        guard frame[start + 3] == 0x9D, frame[start + 4] == 0x01, frame[start + 5] == 0x2A else { return nil }
        let width = Int(frame[start + 6]) | Int(frame[start + 7] & 0x3F) << 8
        let height = Int(frame[start + 8]) | Int(frame[start + 9] & 0x3F) << 8
        return width > 0 && height > 0 ? PictureSize(width: width, height: height) : nil
    }

    private static func h264(_ payload: ArraySlice<UInt8>) -> PictureSize? {
        guard let header = payload.first else { return nil }
        switch header & 0x1F {
        case 7:
            return PictureSize(h264SPS: payload)
        case 24:
            return H264Payload.aggregatedUnits(payload)?.first { $0[$0.startIndex] & 0x1F == 7 }.flatMap { PictureSize(h264SPS: $0) }
        default:
            return nil
        }
    }
}
