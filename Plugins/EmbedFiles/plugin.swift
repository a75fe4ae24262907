import Foundation
import PackagePlugin

/// Embeds the files of its target that are not Swift sources (the web studio under `web/`,
/// the built-in layouts under `layouts/`, the API document `openapi.yaml`) into the target,
/// so `tally` serves them from whatever directory it is started in. They live in the target
/// (as links to the repository's folders) so that adding or removing one re-plans the build.
@main
struct EmbedFiles: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        guard let module = target.sourceModule else { return [] }
        let root = module.directoryURL.path + "/"
        let files = module.sourceFiles.filter { $0.url.pathExtension != "swift" && $0.url.lastPathComponent != "README.md" }
        let output = context.pluginWorkDirectoryURL.appending(path: "GeneratedFiles.swift")
        return [.buildCommand(
            displayName: "Embedding \(files.count) studio, layout and API files",
            executable: try context.tool(named: "embed-files").url,
            arguments: [output.path] + files.map { "\($0.url.path.dropFirst(root.count))=\($0.url.path)" },
            inputFiles: files.map(\.url),
            outputFiles: [output])]
    }
}
