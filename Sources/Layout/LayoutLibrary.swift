import Foundation

/// Every layout of a `layouts/` folder, checked when loaded: a broken file stops the server
/// at start with its name, not a studio mid-show.
public struct LayoutLibrary: Sendable {
    public let layouts: [LayoutSpec]

    public init(layouts: [LayoutSpec]) throws(LayoutError) {
        var seen: Set<String> = []
        for layout in layouts {
            try layout.validate()
            guard seen.insert(layout.name).inserted else { throw LayoutError("two layouts are named \(layout.name)") }
        }
        self.layouts = layouts
    }

    /// Reads every `*.json` in `directory`, in name order.
    public init(directory: URL) throws(LayoutError) {
        let files: [URL]
        do {
            files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
                .filter { $0.pathExtension == "json" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
        } catch {
            throw LayoutError("cannot read the layouts folder \(directory.path): \(error.localizedDescription)")
        }
        var layouts: [LayoutSpec] = []
        for file in files {
            do {
                layouts.append(try JSONDecoder().decode(LayoutSpec.self, from: Data(contentsOf: file)))
            } catch {
                throw LayoutError("\(file.lastPathComponent): \(error)")
            }
        }
        guard !layouts.isEmpty else { throw LayoutError("no layouts (*.json) in \(directory.path)") }
        try self.init(layouts: layouts)
    }

    public func layout(named name: String) -> LayoutSpec? {
        layouts.first { $0.name == name }
    }
}
