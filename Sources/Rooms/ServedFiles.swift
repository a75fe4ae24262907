import MediaCodecs
import Outputs

/// The files of an HLS directory as the program's and the streams' writers name them, for
/// the routes that serve them.
public enum HLSFiles {
    public static var playlistName: String { HLSOutput.playlistName }

    /// The file's content type, or nil for a name no writer makes.
    public static func contentType(of name: String) -> String? { HLSOutput.contentType(of: name) }

    /// A segment's media sequence number, from its name.
    public static func sequence(of name: String) -> Int? { HLSOutput.sequence(of: name) }
}

/// What an uploaded stage image (logo, background) must be for the program to draw it.
public enum StageImage {
    /// The most pixels the program decodes for one image.
    public static var maxPixels: Int { ImageDecoder.maxPixels }

    /// The size the image's header declares, read without decoding it.
    public static func declaredSize(_ bytes: [UInt8]) -> (width: Int, height: Int)? { ImageDecoder.declaredSize(bytes) }
}
