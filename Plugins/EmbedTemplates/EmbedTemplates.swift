import Foundation
import PackagePlugin

/// Compiles the files of `data/templates/` into the target as `EmailTemplates.builtinTemplates`,
/// so a copied binary carries its default email templates (no resource bundle to find at run time).
///
/// Every file is declared as an input, so editing one rebuilds. SwiftPM runs this plugin again
/// only when it plans the build anew (Package.swift or a target's folder changed), so the
/// directory is an input too and the tool fails, saying so, when a file was added since; after
/// adding or removing a template, `touch Package.swift`.
@main
struct EmbedTemplates: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let directory = context.package.directoryURL.appending(path: "data/templates", directoryHint: .isDirectory)
        let fileManager = FileManager.default
        let names = try fileManager.contentsOfDirectory(atPath: directory.path(percentEncoded: false))
            .filter { !$0.hasPrefix(".") }
            .sorted()
        let inputs = names.map { directory.appending(path: $0, directoryHint: .notDirectory) }.filter { url in
            var isDirectory: ObjCBool = false
            return fileManager.fileExists(atPath: url.path(percentEncoded: false), isDirectory: &isDirectory)
                && !isDirectory.boolValue
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "BuiltinTemplates.swift", directoryHint: .notDirectory)
        return [
            .buildCommand(
                displayName: "Embedding \(inputs.count) email templates from data/templates",
                executable: try context.tool(named: "EmbedTemplatesTool").url,
                arguments: [output.path(percentEncoded: false), directory.path(percentEncoded: false)]
                    + inputs.map { $0.path(percentEncoded: false) },
                inputFiles: [directory] + inputs,
                outputFiles: [output]
            )
        ]
    }
}
