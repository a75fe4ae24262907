import Foundation

/// The files built into `tally`: the web studio under `web/`, the built-in layouts under
/// `layouts/`, and `openapi.yaml`. Decoded once, on first use.
public enum StudioFiles {
    private static let files: [String: Data] = Dictionary(uniqueKeysWithValues: GeneratedFiles.base64.map { entry in
        // The build wrote these; a file that does not decode is a broken build, not bad input.
        guard let data = Data(base64Encoded: entry.contents) else { preconditionFailure("embedded \(entry.name) is not base64") }
        return (entry.name, data)
    })

    /// The file at `path` (such as `web/index.html`), or nil.
    public static func file(_ path: String) -> Data? {
        files[path]
    }

    /// Every file whose path starts with `prefix` (such as `layouts/`), in path order.
    public static func files(under prefix: String) -> [(path: String, contents: Data)] {
        files.filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}
