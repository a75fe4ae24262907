import CX264

/// The program's video encoder: x264, constant bitrate, zero latency (no B-frames, no
/// lookahead), High profile, a keyframe exactly every `keyframeInterval` frames. Output is
/// Annex B with SPS/PPS repeated before every keyframe, which every output can cut at.
public final class H264Encoder {
    public struct Settings: Sendable, Equatable {
        public var width: Int
        public var height: Int
        public var framesPerSecond: Int
        public var bitrateKbps: Int
        public var keyframeIntervalSeconds: Int
        public var preset: String
        /// 0 or less lets x264 choose.
        public var threads: Int

        public init(width: Int = 1280, height: Int = 720, framesPerSecond: Int = 30, bitrateKbps: Int = 3000,
                    keyframeIntervalSeconds: Int = 2, preset: String = "veryfast", threads: Int = 0) {
            self.width = width
            self.height = height
            self.framesPerSecond = framesPerSecond
            self.bitrateKbps = bitrateKbps
            self.keyframeIntervalSeconds = keyframeIntervalSeconds
            self.preset = preset
            self.threads = threads
        }
    }

    public let settings: Settings
    private let encoder: OpaquePointer
    /// SPS and PPS in Annex B, for containers that want them up front.
    public let parameterSets: [UInt8]

    public init(_ settings: Settings) throws(CodecError) {
        guard settings.width % 2 == 0, settings.height % 2 == 0, settings.width > 0, settings.height > 0 else {
            throw CodecError("H.264 needs an even, non-zero size; got \(settings.width)×\(settings.height)")
        }
        self.settings = settings
        var param = x264_param_t()
        guard x264_param_default_preset(&param, settings.preset, "zerolatency") == 0 else {
            throw CodecError("x264 does not know the preset \(settings.preset)")
        }
        param.i_width = Int32(settings.width)
        param.i_height = Int32(settings.height)
        param.i_csp = X264_CSP_I420
        param.i_fps_num = UInt32(settings.framesPerSecond)
        param.i_fps_den = 1
        param.i_timebase_num = 1
        param.i_timebase_den = 1_000_000
        param.b_vfr_input = 0
        param.i_threads = Int32(max(0, settings.threads))
        param.i_keyint_max = Int32(settings.framesPerSecond * settings.keyframeIntervalSeconds)
        param.i_keyint_min = param.i_keyint_max
        param.i_scenecut_threshold = 0
        param.b_repeat_headers = 1
        param.b_annexb = 1
        param.rc.i_rc_method = X264_RC_ABR
        param.rc.i_bitrate = Int32(settings.bitrateKbps)
        param.rc.i_vbv_max_bitrate = Int32(settings.bitrateKbps)
        param.rc.i_vbv_buffer_size = Int32(settings.bitrateKbps)
        param.rc.b_filler = 1
        param.i_log_level = X264_LOG_ERROR
        guard x264_param_apply_profile(&param, "high") == 0 else { throw CodecError("x264 refused the High profile") }
        guard let encoder = tally_x264_encoder_open(&param) else { throw CodecError("x264 did not open with these settings") }
        self.encoder = encoder
        var nals: UnsafeMutablePointer<x264_nal_t>?
        var count: Int32 = 0
        let size = x264_encoder_headers(encoder, &nals, &count)
        var headers: [UInt8] = []
        if size > 0, let nals {
            for index in 0..<Int(count) where nals[index].i_type == Int32(NAL_SPS.rawValue) || nals[index].i_type == Int32(NAL_PPS.rawValue) {
                headers += UnsafeBufferPointer(start: nals[index].p_payload, count: Int(nals[index].i_payload))
            }
        }
        parameterSets = headers
    }

    deinit { x264_encoder_close(encoder) }

    /// Encodes one picture of the configured size, stamped `pts` microseconds.
    public func encode(_ frame: inout VideoFrame, pts: Int64) throws(CodecError) -> ProgramPacket? {
        guard frame.width == settings.width, frame.height == settings.height else {
            throw CodecError("frame is \(frame.width)×\(frame.height), the encoder \(settings.width)×\(settings.height)")
        }
        var input = x264_picture_t()
        x264_picture_init(&input)
        var output = x264_picture_t()
        var nals: UnsafeMutablePointer<x264_nal_t>?
        var count: Int32 = 0
        let chromaStride = Int32(frame.chromaWidth)
        let size = frame.y.withUnsafeMutableBufferPointer { y in
            frame.u.withUnsafeMutableBufferPointer { u in
                frame.v.withUnsafeMutableBufferPointer { v in
                    input.img.i_csp = X264_CSP_I420
                    input.img.i_plane = 3
                    input.img.plane = (y.baseAddress, u.baseAddress, v.baseAddress, nil)
                    input.img.i_stride = (Int32(settings.width), chromaStride, chromaStride, 0)
                    input.i_pts = pts
                    return x264_encoder_encode(encoder, &nals, &count, &input, &output)
                }
            }
        }
        guard size >= 0 else { throw CodecError("x264 failed to encode a frame") }
        guard size > 0, let nals else { return nil }
        // x264 lays a frame's NAL units out back to back.
        let data = [UInt8](UnsafeBufferPointer(start: nals[0].p_payload, count: Int(size)))
        return ProgramPacket(kind: .video, data: data, pts: output.i_pts, dts: output.i_dts, isKeyframe: output.b_keyframe != 0)
    }
}
