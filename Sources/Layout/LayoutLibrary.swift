import Foundation

/// Every layout of a `layouts/` folder (or the built-in ones), checked when loaded: a broken file stops the server
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
                .filter { $0.pathExtension == "json" }
        } catch {
            throw LayoutError("cannot read the layouts folder \(directory.path): \(error.localizedDescription)")
        }
        var contents: [(name: String, contents: Data)] = []
        for file in files {
            do {
                contents.append((file.lastPathComponent, try Data(contentsOf: file)))
            } catch {
                throw LayoutError("cannot read \(file.path): \(error.localizedDescription)")
            }
        }
        try self.init(files: contents, from: directory.path)
    }

    /// Decodes layout files (`name` ends in `.json`), in name order; `source` names where
    /// they came from in errors.
    public init(files: [(name: String, contents: Data)], from source: String) throws(LayoutError) {
        var layouts: [LayoutSpec] = []
        for file in files.sorted(by: { $0.name < $1.name }) {
            do {
                layouts.append(try JSONDecoder().decode(LayoutSpec.self, from: file.contents))
            } catch {
                throw LayoutError("\(file.name): \(error)")
            }
        }
        guard !layouts.isEmpty else { throw LayoutError("no layouts (*.json) in \(source)") }
        try self.init(layouts: layouts)
    }

    public func layout(named name: String) -> LayoutSpec? {
        layouts.first { $0.name == name }
    }
}
