import CFFmpeg

/// A rectangle of pixels; compositing keeps every edge even so chroma lines up.
public struct PixelRect: Sendable, Equatable {
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int

    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }

    /// Rounded inward to even coordinates.
    public var even: PixelRect {
        let left = (x + 1) & ~1
        let top = (y + 1) & ~1
        return PixelRect(x: left, y: top, width: max(0, (x + width - left) & ~1), height: max(0, (y + height - top) & ~1))
    }
}

/// Scales part of a picture straight into a rectangle of another (libswscale, bilinear),
/// with no intermediate copy. One instance per input, so its scaling context is reused
/// while sizes stay the same.
public final class FrameScaler {
    private var context: OpaquePointer?

    public init() {}

    deinit { sws_freeContext(context) }

    /// Draws `crop` of `source` over `rect` of `canvas`. Both rectangles are made even and
    /// clipped to their pictures.
    public func draw(_ source: VideoFrame, crop: PixelRect, into canvas: inout VideoFrame, rect: PixelRect) {
        let crop = crop.clipped(width: source.width, height: source.height).even
        let rect = rect.clipped(width: canvas.width, height: canvas.height).even
        guard crop.width >= 2, crop.height >= 2, rect.width >= 2, rect.height >= 2 else { return }
        if crop.width == rect.width, crop.height == rect.height {
            copy(source, crop: crop, into: &canvas, at: rect)
            return
        }
        // Near-unity scaling (the usual tile) looks the same with the fast filter at a fraction of
        // the cost; real downscaling keeps the proper bilinear filter against aliasing.
        let gentle = rect.width * 4 >= crop.width * 3 && rect.height * 4 >= crop.height * 3
        context = sws_getCachedContext(context, Int32(crop.width), Int32(crop.height), AV_PIX_FMT_YUV420P,
                                       Int32(rect.width), Int32(rect.height), AV_PIX_FMT_YUV420P, gentle ? SWS_FAST_BILINEAR : SWS_BILINEAR, nil, nil, nil)
        guard let context else { return }
        let sourceChroma = source.chromaWidth
        let canvasWidth = canvas.width
        let canvasChroma = canvas.chromaWidth
        source.y.withUnsafeBufferPointer { sy in
            source.u.withUnsafeBufferPointer { su in
                source.v.withUnsafeBufferPointer { sv in
                    canvas.y.withUnsafeMutableBufferPointer { dy in
                        canvas.u.withUnsafeMutableBufferPointer { du in
                            canvas.v.withUnsafeMutableBufferPointer { dv in
                                let sourcePlanes: [UnsafePointer<UInt8>?] = [
                                    sy.baseAddress! + crop.y * source.width + crop.x,
                                    su.baseAddress! + crop.y / 2 * sourceChroma + crop.x / 2,
                                    sv.baseAddress! + crop.y / 2 * sourceChroma + crop.x / 2,
                                    nil,
                                ]
                                let sourceStrides: [Int32] = [Int32(source.width), Int32(sourceChroma), Int32(sourceChroma), 0]
                                let canvasPlanes: [UnsafeMutablePointer<UInt8>?] = [
                                    dy.baseAddress! + rect.y * canvasWidth + rect.x,
                                    du.baseAddress! + rect.y / 2 * canvasChroma + rect.x / 2,
                                    dv.baseAddress! + rect.y / 2 * canvasChroma + rect.x / 2,
                                    nil,
                                ]
                                let canvasStrides: [Int32] = [Int32(canvasWidth), Int32(canvasChroma), Int32(canvasChroma), 0]
                                _ = sws_scale(context, sourcePlanes, sourceStrides, 0, Int32(crop.height), canvasPlanes, canvasStrides)
                            }
                        }
                    }
                }
            }
        }
    }
}

extension FrameScaler {
    /// Same size: rows are copied, no filtering.
    private func copy(_ source: VideoFrame, crop: PixelRect, into canvas: inout VideoFrame, at rect: PixelRect) {
        func rows(_ from: [UInt8], _ fromStride: Int, _ to: inout [UInt8], _ toStride: Int, x: Int, y: Int, tx: Int, ty: Int, width: Int, height: Int) {
            from.withUnsafeBufferPointer { input in
                to.withUnsafeMutableBufferPointer { output in
                    for row in 0..<height {
                        (output.baseAddress! + (ty + row) * toStride + tx).update(from: input.baseAddress! + (y + row) * fromStride + x, count: width)
                    }
                }
            }
        }
        rows(source.y, source.width, &canvas.y, canvas.width, x: crop.x, y: crop.y, tx: rect.x, ty: rect.y, width: rect.width, height: rect.height)
        rows(source.u, source.chromaWidth, &canvas.u, canvas.chromaWidth, x: crop.x / 2, y: crop.y / 2, tx: rect.x / 2, ty: rect.y / 2,
             width: rect.width / 2, height: rect.height / 2)
        rows(source.v, source.chromaWidth, &canvas.v, canvas.chromaWidth, x: crop.x / 2, y: crop.y / 2, tx: rect.x / 2, ty: rect.y / 2,
             width: rect.width / 2, height: rect.height / 2)
    }
}

extension PixelRect {
    /// The part of the rectangle inside a picture of this size.
    public func clipped(width: Int, height: Int) -> PixelRect {
        let left = max(0, x)
        let top = max(0, y)
        return PixelRect(x: left, y: top, width: max(0, min(x + self.width, width) - left), height: max(0, min(y + self.height, height) - top))
    }
}
