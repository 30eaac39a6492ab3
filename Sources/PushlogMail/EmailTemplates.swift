import Foundation
import Logging
import Mustache
import PushlogCore

/// The digest email templates: the files of `data/templates/`, compiled into the binary, each
/// replaced by the file of the same name in `email.template_dir` when that directory has one.
///
/// Partials resolve by file name (`{{> room.html}}`), through the same file-by-file lookup, so an
/// override directory may hold just one partial. `.txt` files always render as plain text (no
/// HTML escaping), everything else as HTML (every `{{value}}` escaped).
public struct EmailTemplates: Sendable {
    /// Where a template file came from.
    public enum Origin: Sendable, Equatable, CustomStringConvertible {
        case builtIn
        /// The path of the override file.
        case file(String)

        public var description: String {
            switch self {
            case .builtIn: "built-in"
            case .file(let path): path
            }
        }
    }

    /// The HTML part's template.
    public static let htmlTemplateName = "notif_mail.html"
    /// The text part's template.
    public static let textTemplateName = "notif_mail.txt"

    /// Where each template came from, by file name.
    public let origins: [String: Origin]
    let library: MustacheLibrary

    /// The built-in templates, each overridden by the file of the same name in `directory`.
    ///
    /// Only `*.html` and `*.txt` files of the directory itself count (hidden files do not). A file
    /// missing there falls back to the built-in one. A directory that does not exist (or is not a
    /// directory) logs one warning naming it and the built-in templates are used: unlike Synapse,
    /// which refuses to start.
    ///
    /// - Throws: `EmailTemplateError` naming the file when an override cannot be read, is not
    ///   UTF-8 or does not parse, or naming the directory when it cannot be listed.
    public static func load(directory: String?, logger: Logger) throws -> EmailTemplates {
        var sources: [String: (text: String, origin: Origin)] = builtinTemplates.mapValues { ($0, .builtIn) }
        var read: String?
        if let directory {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory)
            if !exists || !isDirectory.boolValue {
                let problem = exists ? "is not a directory" : "does not exist"
                logger.warning(
                    "email.template_dir \(directory) \(problem); using the built-in email templates",
                    metadata: ["template_dir": "\(directory)"])
            } else {
                for (name, path) in try overrideFiles(in: directory) {
                    sources[name] = (try readText(path), .file(path))
                }
                read = directory
            }
        }
        var library = MustacheLibrary()
        for (name, source) in sources {
            library.register(try parse(source.text, name: name, origin: source.origin), named: name)
        }
        // Said once everything parsed: a start-up that fails says only why.
        if let directory = read {
            let overridden = sources.filter { $0.value.origin != .builtIn }.keys.sorted()
            logger.info(
                "email templates from \(directory): \(overridden.isEmpty ? "none" : overridden.joined(separator: ", ")); the rest built in",
                metadata: ["template_dir": "\(directory)"])
        }
        return EmailTemplates(origins: sources.mapValues(\.origin), library: library)
    }

    /// Renders the template `name` (an HTML or text top-level template) with `view`.
    func render(_ name: String, _ view: Any) -> String {
        library.render(view, withTemplate: name) ?? ""
    }

    // MARK: - Loading

    private static let textPragma = "{{% CONTENT_TYPE: TEXT }}\n"

    private static func isTemplateName(_ name: String) -> Bool {
        !name.hasPrefix(".") && (name.hasSuffix(".html") || name.hasSuffix(".txt"))
    }

    /// The override files of `directory`, by name, in name order.
    private static func overrideFiles(in directory: String) throws -> [(String, String)] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw EmailTemplateError(file: directory, reason: "the template directory cannot be listed (\(error.localizedDescription))")
        }
        let base = directory.hasSuffix("/") ? directory : directory + "/"
        return names.filter(isTemplateName).sorted().compactMap { name in
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: base + name, isDirectory: &isDirectory), !isDirectory.boolValue else {
                return nil
            }
            return (name, base + name)
        }
    }

    private static func readText(_ path: String) throws -> String {
        let bytes: [UInt8]
        do { bytes = try FileText.read(path) } catch let e as FileText.Failure {
            throw EmailTemplateError(file: path, reason: "cannot be read: \(e.reason)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw EmailTemplateError(file: path, reason: "is not valid UTF-8")
        }
        return text
    }

    private static func parse(_ text: String, name: String, origin: Origin) throws -> MustacheTemplate {
        // A partial starts in HTML mode whoever includes it, so each text file says TEXT itself.
        // The pragma gets a line of its own, which the parser drops; error lines are shifted back.
        let isText = name.hasSuffix(".txt")
        do {
            return try MustacheTemplate(string: isText ? textPragma + text : text)
        } catch let error as MustacheTemplate.ParserError {
            let file = origin == .builtIn ? "built-in \(name)" : origin.description
            throw EmailTemplateError(
                file: file, line: max(1, error.context.lineNumber - (isText ? 1 : 0)),
                column: error.context.columnNumber, reason: describe(error.error))
        }
    }

    private static func describe(_ error: any Error) -> String {
        guard let error = error as? MustacheTemplate.Error else { return "unexpected end of the template (\(error))" }
        switch error {
        case .sectionCloseNameIncorrect: return "a section is closed with a name that does not match its opening tag"
        case .unfinishedName: return "a tag is not closed, or its name is not valid"
        case .expectedSectionEnd: return "a section is never closed"
        case .invalidSetDelimiter: return "invalid set-delimiter tag"
        case .transformAppliedToInheritanceSection: return "a transform is applied to an inheritance block"
        case .illegalTokenInsideInheritSection: return "only blocks may appear inside an inheriting partial"
        case .textInsideInheritSection: return "text inside an inheriting partial"
        case .invalidConfigVariableSyntax: return "invalid pragma"
        case .unrecognisedConfigVariable: return "unknown pragma"
        }
    }
}

/// A template that cannot be used, and which file it is.
public struct EmailTemplateError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file's path (or "built-in NAME"; or the directory when it cannot be listed).
    public var file: String
    public var line: Int?
    public var column: Int?
    public var reason: String

    public init(file: String, line: Int? = nil, column: Int? = nil, reason: String) {
        self.file = file
        self.line = line
        self.column = column
        self.reason = reason
    }

    public var description: String {
        var place = "email template \(file)"
        if let line {
            place += " line \(line)"
            if let column { place += ", column \(column)" }
        }
        return "\(place): \(reason)"
    }
}
