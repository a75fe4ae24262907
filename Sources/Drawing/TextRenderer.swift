import CFreeType

/// An 8-bit coverage mask of rendered text.
public struct TextMask: Sendable {
    public var width: Int
    public var height: Int
    public var alpha: [UInt8]
}

/// Renders text with FreeType from one TrueType face. Not thread-safe: the compositor's
/// thread owns it.
public final class TextRenderer {
    private var library: FT_Library?
    private var face: FT_Face?
    private var cache: [String: TextMask] = [:]

    public static let defaultFont = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"

    public init(fontPath: String = TextRenderer.defaultFont) throws {
        guard FT_Init_FreeType(&library) == 0 else { throw DrawingError("FreeType did not initialise") }
        // A renderer whose face did not load is released by deinit, which frees the library.
        guard FT_New_Face(library, fontPath, 0, &face) == 0 else {
            throw DrawingError("cannot load the font \(fontPath) (install fonts-dejavu-core)")
        }
    }

    deinit {
        if let face { FT_Done_Face(face) }
        if let library { FT_Done_FreeType(library) }
    }

    /// `text` in one line at `pixelHeight`, cut with an ellipsis to at most `maxWidth` pixels.
    public func render(_ text: String, pixelHeight: Int, maxWidth: Int) -> TextMask {
        let key = "\(pixelHeight)/\(maxWidth)/\(text)"
        if let cached = cache[key] { return cached }
        var characters = Array(text)
        var mask = draw(characters, pixelHeight: pixelHeight)
        while mask.width > maxWidth, characters.count > 1 {
            characters.removeLast(2)
            mask = draw(characters + ["…"], pixelHeight: pixelHeight)
        }
        if cache.count > 256 { cache.removeAll() }
        cache[key] = mask
        return mask
    }

    private func draw(_ characters: [Character], pixelHeight: Int) -> TextMask {
        guard let face else { return TextMask(width: 0, height: 0, alpha: []) }
        FT_Set_Pixel_Sizes(face, 0, FT_UInt(pixelHeight))
        let metrics = face.pointee.size.pointee.metrics
        let ascender = Int(metrics.ascender >> 6)
        let height = max(1, Int((metrics.ascender - metrics.descender) >> 6))
        struct Glyph { var x: Int; var top: Int; var width: Int; var rows: Int; var pitch: Int; var pixels: [UInt8] }
        var glyphs: [Glyph] = []
        var pen = 0
        for scalar in characters.flatMap(\.unicodeScalars) {
            guard FT_Load_Char(face, FT_ULong(scalar.value), tally_ft_load_render()) == 0, let slot = face.pointee.glyph else { continue }
            let bitmap = slot.pointee.bitmap
            let pitch = Int(bitmap.pitch)
            let rows = Int(bitmap.rows)
            var pixels: [UInt8] = []
            if let buffer = bitmap.buffer, pitch > 0 { pixels = Array(UnsafeBufferPointer(start: buffer, count: pitch * rows)) }
            glyphs.append(Glyph(x: pen + Int(slot.pointee.bitmap_left), top: ascender - Int(slot.pointee.bitmap_top),
                                width: Int(bitmap.width), rows: rows, pitch: pitch, pixels: pixels))
            pen += Int(slot.pointee.advance.x >> 6)
        }
        let width = max(1, pen)
        var alpha = [UInt8](repeating: 0, count: width * height)
        for glyph in glyphs where !glyph.pixels.isEmpty {
            for row in 0..<glyph.rows {
                let y = glyph.top + row
                guard y >= 0, y < height else { continue }
                for column in 0..<glyph.width {
                    let x = glyph.x + column
                    guard x >= 0, x < width else { continue }
                    let value = glyph.pixels[row * glyph.pitch + column]
                    alpha[y * width + x] = max(alpha[y * width + x], value)
                }
            }
        }
        return TextMask(width: width, height: height, alpha: alpha)
    }
}

public struct DrawingError: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
