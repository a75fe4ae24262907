import CFFmpeg
import CVPX

/// Decodes one track's coded frames into pictures. One instance per track, used from one
/// thread at a time.
public protocol VideoDecoder: AnyObject {
    /// The picture `frame` completes, if any; a decoding error means the owner should ask for
    /// a keyframe.
    func decode(_ frame: EncodedFrame) throws(CodecError) -> VideoFrame?
}

public enum VideoDecoders {
    public static func make(_ codec: VideoCodec) throws(CodecError) -> any VideoDecoder {
        switch codec {
        case .vp8, .vp9: try VPXDecoder(codec: codec)
        case .h264: try AVVideoDecoder(codecID: AV_CODEC_ID_H264)
        case .hevc: try AVVideoDecoder(codecID: AV_CODEC_ID_HEVC)
        // libavcodec's own AV1 decoder only drives hardware; dav1d decodes in software.
        case .av1: try AVVideoDecoder(codecID: AV_CODEC_ID_AV1, preferring: "libdav1d")
        }
    }
}

/// libvpx, for VP8 and VP9.
public final class VPXDecoder: VideoDecoder {
    private var context = vpx_codec_ctx_t()

    public init(codec: VideoCodec) throws(CodecError) {
        let interface = codec == .vp9 ? vpx_codec_vp9_dx() : vpx_codec_vp8_dx()
        let status = tally_vpx_decoder_init(&context, interface, 1)
        guard status == VPX_CODEC_OK else { throw CodecError("libvpx decoder: \(String(cString: vpx_codec_err_to_string(status)))") }
    }

    deinit { vpx_codec_destroy(&context) }

    public func decode(_ frame: EncodedFrame) throws(CodecError) -> VideoFrame? {
        let status = frame.data.withUnsafeBufferPointer { bytes in
            vpx_codec_decode(&context, bytes.baseAddress, UInt32(bytes.count), nil, 0)
        }
        guard status == VPX_CODEC_OK else { throw CodecError("libvpx: \(String(cString: vpx_codec_err_to_string(status)))") }
        var iterator: vpx_codec_iter_t?
        var latest: VideoFrame?
        while let image = vpx_codec_get_frame(&context, &iterator) {
            let image = image.pointee
            guard image.fmt == VPX_IMG_FMT_I420, image.d_w > 0, image.d_h > 0 else { continue }
            latest = VideoFrame.copying(width: Int(image.d_w), height: Int(image.d_h),
                                        planes: (image.planes.0!, image.planes.1!, image.planes.2!),
                                        strides: (Int(image.stride.0), Int(image.stride.1), Int(image.stride.2)))
        }
        return latest
    }
}

/// libavcodec, for H.264, HEVC and AV1.
public final class AVVideoDecoder: VideoDecoder {
    private var context: UnsafeMutablePointer<AVCodecContext>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var picture: UnsafeMutablePointer<AVFrame>?

    /// `preferring`: a decoder to take by name when libavcodec has it.
    public init(codecID: AVCodecID, preferring name: String? = nil) throws(CodecError) {
        guard let codec = name.flatMap({ avcodec_find_decoder_by_name($0) }) ?? avcodec_find_decoder(codecID) else {
            throw CodecError("libavcodec has no decoder for codec \(codecID.rawValue)")
        }
        context = avcodec_alloc_context3(codec)
        context?.pointee.thread_count = 1
        guard avcodec_open2(context, codec, nil) >= 0 else {
            avcodec_free_context(&context)
            throw CodecError("libavcodec decoder did not open")
        }
        packet = av_packet_alloc()
        picture = av_frame_alloc()
    }

    deinit {
        avcodec_free_context(&context)
        av_packet_free(&packet)
        av_frame_free(&picture)
    }

    public func decode(_ frame: EncodedFrame) throws(CodecError) -> VideoFrame? {
        let sent = frame.data.withUnsafeBufferPointer { bytes -> Int32 in
            packet!.pointee.data = UnsafeMutablePointer(mutating: bytes.baseAddress)
            packet!.pointee.size = Int32(bytes.count)
            defer {
                packet!.pointee.data = nil
                packet!.pointee.size = 0
            }
            return avcodec_send_packet(context, packet)
        }
        guard sent >= 0 else { throw CodecError("libavcodec: \(AVErrorText(sent))") }
        var latest: VideoFrame?
        while avcodec_receive_frame(context, picture) >= 0 {
            let image = picture!.pointee
            defer { av_frame_unref(picture) }
            guard image.format == AV_PIX_FMT_YUV420P.rawValue || image.format == AV_PIX_FMT_YUVJ420P.rawValue else { continue }
            latest = VideoFrame.copying(width: Int(image.width), height: Int(image.height),
                                        planes: (image.data.0!, image.data.1!, image.data.2!),
                                        strides: (Int(image.linesize.0), Int(image.linesize.1), Int(image.linesize.2)))
        }
        return latest
    }
}

/// A libav* error code as words.
func AVErrorText(_ code: Int32) -> String {
    var buffer = [UInt8](repeating: 0, count: 128)
    buffer.withUnsafeMutableBufferPointer { bytes in
        bytes.withMemoryRebound(to: CChar.self) { _ = av_strerror(code, $0.baseAddress, $0.count) }
    }
    return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
}

extension VideoFrame {
    /// Copies three strided planes into a packed frame.
    static func copying(width: Int, height: Int, planes: (UnsafeMutablePointer<UInt8>, UnsafeMutablePointer<UInt8>, UnsafeMutablePointer<UInt8>),
                        strides: (Int, Int, Int)) -> VideoFrame {
        let chromaWidth = (width + 1) / 2
        let chromaHeight = (height + 1) / 2
        func pack(_ source: UnsafeMutablePointer<UInt8>, stride: Int, width: Int, height: Int) -> [UInt8] {
            [UInt8](unsafeUninitializedCapacity: width * height) { buffer, count in
                for row in 0..<height {
                    (buffer.baseAddress! + row * width).update(from: source + row * stride, count: width)
                }
                count = width * height
            }
        }
        return VideoFrame(width: width, height: height,
                          y: pack(planes.0, stride: strides.0, width: width, height: height),
                          u: pack(planes.1, stride: strides.1, width: chromaWidth, height: chromaHeight),
                          v: pack(planes.2, stride: strides.2, width: chromaWidth, height: chromaHeight))
    }
}
