/// The faces a theme may choose: the bold DejaVu fonts Debian's fonts-dejavu-core installs,
/// which the compositor draws with and the studio's preview loads from `/fonts/{name}.ttf`.
public enum ThemeFonts {
    static let directory = "/usr/share/fonts/truetype/dejavu/"
    static let files = ["sans": "DejaVuSans-Bold.ttf", "serif": "DejaVuSerif-Bold.ttf", "mono": "DejaVuSansMono-Bold.ttf"]

    /// The file of a font name from `Stage.Theme.fonts`; the sans face for any other.
    public static func path(_ font: String) -> String {
        directory + (files[font] ?? "DejaVuSans-Bold.ttf")
    }

    /// The file behind `/fonts/{name}.ttf`, for the three names only.
    public static func servedPath(_ name: String) -> String? {
        files[name].map { directory + $0 }
    }
}
