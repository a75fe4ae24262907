import CFFmpeg
import FLV

/// Still images (PNG, JPEG, WebP) from the host's uploads, decoded with libavcodec and converted
/// to I420 plus an alpha plane.
public enum ImageDecoder {
    /// Pixels an image may have before it is decoded at all: a 420 KB PNG can declare
    /// 12000×12000 and cost half a gigabyte once decoded.
    public static let maxPixels = 4096 * 4096

    /// The width and height a PNG, JPEG or WebP header declares, nothing decoded.
    public static func declaredSize(_ bytes: [UInt8]) -> (width: Int, height: Int)? {
        PictureSize(stillImage: bytes).map { ($0.width, $0.height) }
    }

    /// The picture, at most `maxWidth` × `maxHeight` (scaled down keeping its shape, sizes
    /// made even), and its opacity per pixel (255 where the image has no alpha). An image
    /// whose header declares more than `maxPixels` is refused unread, and libavcodec is held
    /// to the same bound.
    public static func decode(_ bytes: [UInt8], maxWidth: Int, maxHeight: Int) throws(CodecError) -> (picture: VideoFrame, alpha: [UInt8]) {
        guard let declared = declaredSize(bytes) else { throw CodecError("the image's header gives no size") }
        guard declared.width * declared.height <= maxPixels else {
            throw CodecError("the image is \(declared.width)×\(declared.height); at most \(maxPixels) pixels are decoded")
        }
        let codecID: AVCodecID
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) {
            codecID = AV_CODEC_ID_PNG
        } else if bytes.starts(with: [0xFF, 0xD8]) {
            codecID = AV_CODEC_ID_MJPEG
        } else if bytes.count > 12, bytes.starts(with: Array("RIFF".utf8)), Array(bytes[8..<12]) == Array("WEBP".utf8) {
            codecID = AV_CODEC_ID_WEBP
        } else {
            throw CodecError("not a PNG, JPEG or WebP image")
        }
        guard let codec = avcodec_find_decoder(codecID) else { throw CodecError("libavcodec cannot decode this image") }
        var context = avcodec_alloc_context3(codec)
        defer { avcodec_free_context(&context) }
        context?.pointee.max_pixels = Int64(maxPixels)
        guard avcodec_open2(context, codec, nil) >= 0 else { throw CodecError("image decoder did not open") }
        var packet = av_packet_alloc()
        var frame = av_frame_alloc()
        defer {
            av_packet_free(&packet)
            av_frame_free(&frame)
        }
        guard let packet, let frame, av_new_packet(packet, Int32(bytes.count)) >= 0 else { throw CodecError("out of memory") }
        bytes.withUnsafeBufferPointer { packet.pointee.data.update(from: $0.baseAddress!, count: $0.count) }
        _ = avcodec_send_packet(context, packet)
        _ = avcodec_send_packet(context, nil)
        guard avcodec_receive_frame(context, frame) >= 0, frame.pointee.width > 0, frame.pointee.height > 0 else {
            throw CodecError("the image could not be decoded")
        }
        let sourceWidth = Int(frame.pointee.width), sourceHeight = Int(frame.pointee.height)
        let scale = min(1, min(Double(maxWidth) / Double(sourceWidth), Double(maxHeight) / Double(sourceHeight)))
        let width = max(2, Int(Double(sourceWidth) * scale) & ~1), height = max(2, Int(Double(sourceHeight) * scale) & ~1)
        guard let scaler = sws_getContext(Int32(sourceWidth), Int32(sourceHeight), AVPixelFormat(frame.pointee.format),
                                          Int32(width), Int32(height), AV_PIX_FMT_YUVA420P, SWS_BICUBIC, nil, nil, nil) else {
            throw CodecError("cannot convert this image's pixel format")
        }
        defer { sws_freeContext(scaler) }
        let chromaWidth = width / 2, chromaHeight = height / 2
        var y = [UInt8](repeating: 0, count: width * height), alpha = [UInt8](repeating: 255, count: width * height)
        var u = [UInt8](repeating: 128, count: chromaWidth * chromaHeight), v = [UInt8](repeating: 128, count: chromaWidth * chromaHeight)
        y.withUnsafeMutableBufferPointer { yp in
            u.withUnsafeMutableBufferPointer { up in
                v.withUnsafeMutableBufferPointer { vp in
                    alpha.withUnsafeMutableBufferPointer { ap in
                        let planes: [UnsafeMutablePointer<UInt8>?] = [yp.baseAddress, up.baseAddress, vp.baseAddress, ap.baseAddress]
                        let strides: [Int32] = [Int32(width), Int32(chromaWidth), Int32(chromaWidth), Int32(width)]
                        let sourcePlanes: [UnsafePointer<UInt8>?] = [frame.pointee.data.0, frame.pointee.data.1, frame.pointee.data.2, frame.pointee.data.3].map { $0.map { UnsafePointer($0) } }
                        let sourceStrides: [Int32] = [frame.pointee.linesize.0, frame.pointee.linesize.1, frame.pointee.linesize.2, frame.pointee.linesize.3]
                        _ = sws_scale(scaler, sourcePlanes, sourceStrides, 0, Int32(sourceHeight), planes, strides)
                    }
                }
            }
        }
        return (VideoFrame(width: width, height: height, y: y, u: u, v: v), alpha)
    }
}
