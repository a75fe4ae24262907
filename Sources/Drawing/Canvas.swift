import MediaCodecs

/// A colour in BT.601 limited-range YUV, what the program is encoded in.
public struct YUVColor: Sendable, Equatable {
    public var y: UInt8
    public var u: UInt8
    public var v: UInt8

    public init(y: UInt8, u: UInt8, v: UInt8) {
        self.y = y
        self.u = u
        self.v = v
    }

    public init(red: Int, green: Int, blue: Int) {
        let r = Double(red), g = Double(green), b = Double(blue)
        y = UInt8(clamping: Int((16 + 0.257 * r + 0.504 * g + 0.098 * b).rounded()))
        u = UInt8(clamping: Int((128 - 0.148 * r - 0.291 * g + 0.439 * b).rounded()))
        v = UInt8(clamping: Int((128 + 0.439 * r - 0.368 * g - 0.071 * b).rounded()))
    }

    public static let white = YUVColor(y: 235, u: 128, v: 128)
    public static let stage = YUVColor(red: 17, green: 24, blue: 39)
    public static let tile = YUVColor(red: 55, green: 65, blue: 81)
    public static let shade = YUVColor(red: 0, green: 0, blue: 0)
}

/// An image with per-pixel opacity (a logo), in YUV 4:2:0 with a full-size alpha plane.
public struct TransparentImage: Sendable {
    public var picture: VideoFrame
    public var alpha: [UInt8]

    public init(picture: VideoFrame, alpha: [UInt8]) {
        self.picture = picture
        self.alpha = alpha
    }
}

/// Drawing on an I420 frame: rectangles, text masks and transparent images, clipped to it.
extension VideoFrame {
    /// Paints the whole frame one colour, in place.
    public mutating func fillPlanes(_ color: YUVColor) {
        y.withUnsafeMutableBufferPointer { $0.update(repeating: color.y) }
        u.withUnsafeMutableBufferPointer { $0.update(repeating: color.u) }
        v.withUnsafeMutableBufferPointer { $0.update(repeating: color.v) }
    }

    /// Copies a frame of the same size over this one, in place.
    public mutating func copyPlanes(from other: VideoFrame) {
        precondition(other.width == width && other.height == height, "frames differ in size")
        y.withUnsafeMutableBufferPointer { target in other.y.withUnsafeBufferPointer { target.baseAddress!.update(from: $0.baseAddress!, count: $0.count) } }
        u.withUnsafeMutableBufferPointer { target in other.u.withUnsafeBufferPointer { target.baseAddress!.update(from: $0.baseAddress!, count: $0.count) } }
        v.withUnsafeMutableBufferPointer { target in other.v.withUnsafeBufferPointer { target.baseAddress!.update(from: $0.baseAddress!, count: $0.count) } }
    }

    public mutating func fill(_ rect: PixelRect, with color: YUVColor, opacity: Int = 255) {
        let area = rect.clipped(width: width, height: height).even
        guard area.width > 0, area.height > 0 else { return }
        let chroma = chromaWidth
        let frameWidth = width
        y.withUnsafeMutableBufferPointer { plane in
            for row in area.y..<(area.y + area.height) {
                let start = row * frameWidth + area.x
                for index in start..<(start + area.width) { plane[index] = Self.mix(plane[index], color.y, opacity) }
            }
        }
        u.withUnsafeMutableBufferPointer { uPlane in
            v.withUnsafeMutableBufferPointer { vPlane in
                for row in (area.y / 2)..<((area.y + area.height) / 2) {
                    let start = row * chroma + area.x / 2
                    for index in start..<(start + area.width / 2) {
                        uPlane[index] = Self.mix(uPlane[index], color.u, opacity)
                        vPlane[index] = Self.mix(vPlane[index], color.v, opacity)
                    }
                }
            }
        }
    }

    /// Paints `color` through `mask` with its top-left corner at (`x`, `y`).
    public mutating func draw(_ mask: TextMask, x originX: Int, y originY: Int, color: YUVColor) {
        let frameWidth = width, frameHeight = height, chroma = chromaWidth
        y.withUnsafeMutableBufferPointer { plane in
            for row in 0..<mask.height {
                let y = originY + row
                guard y >= 0, y < frameHeight else { continue }
                for column in 0..<mask.width {
                    let x = originX + column
                    let alpha = Int(mask.alpha[row * mask.width + column])
                    guard alpha > 0, x >= 0, x < frameWidth else { continue }
                    plane[y * frameWidth + x] = Self.mix(plane[y * frameWidth + x], color.y, alpha)
                }
            }
        }
        u.withUnsafeMutableBufferPointer { uPlane in
            v.withUnsafeMutableBufferPointer { vPlane in
                for row in stride(from: 0, to: mask.height, by: 2) {
                    let y = (originY + row) / 2
                    guard originY + row >= 0, y < (frameHeight + 1) / 2 else { continue }
                    for column in stride(from: 0, to: mask.width, by: 2) {
                        let x = (originX + column) / 2
                        let alpha = Int(mask.alpha[row * mask.width + column])
                        guard alpha > 0, originX + column >= 0, x < chroma else { continue }
                        uPlane[y * chroma + x] = Self.mix(uPlane[y * chroma + x], color.u, alpha)
                        vPlane[y * chroma + x] = Self.mix(vPlane[y * chroma + x], color.v, alpha)
                    }
                }
            }
        }
    }

    /// Blends `image` with its top-left corner at (`x`, `y`).
    public mutating func draw(_ image: TransparentImage, x originX: Int, y originY: Int) {
        let picture = image.picture
        let frameWidth = width, frameHeight = height, chroma = chromaWidth
        for row in 0..<picture.height {
            let y = originY + row
            guard y >= 0, y < frameHeight else { continue }
            for column in 0..<picture.width {
                let x = originX + column
                let alpha = Int(image.alpha[row * picture.width + column])
                guard alpha > 0, x >= 0, x < frameWidth else { continue }
                self.y[y * frameWidth + x] = Self.mix(self.y[y * frameWidth + x], picture.y[row * picture.width + column], alpha)
                if row % 2 == 0, column % 2 == 0, y / 2 < chromaHeight, x / 2 < chroma {
                    let source = row / 2 * picture.chromaWidth + column / 2
                    let target = y / 2 * chroma + x / 2
                    u[target] = Self.mix(u[target], picture.u[source], alpha)
                    v[target] = Self.mix(v[target], picture.v[source], alpha)
                }
            }
        }
    }

    @inline(__always)
    static func mix(_ base: UInt8, _ top: UInt8, _ alpha: Int) -> UInt8 {
        UInt8((Int(base) * (255 - alpha) + Int(top) * alpha + 127) / 255)
    }
}
