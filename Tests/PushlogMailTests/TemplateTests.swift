import Foundation
import Logging
import Testing
import TestSupport
@testable import PushlogMail

@Suite("Email templates")
struct TemplateTests {
    /// `data/templates/` of this checkout.
    static let dataTemplates = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("data/templates")

    /// A fresh directory holding `files`, removed by `body`'s end.
    func withDirectory<T>(_ files: [String: String], _ body: (String) throws -> T) throws -> T {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-templates-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, text) in files {
            try Data(text.utf8).write(to: dir.appendingPathComponent(name))
        }
        return try body(dir.path)
    }

    func render(_ templates: EmailTemplates, _ digest: Digest = DigestFixture.digest([DigestFixture.message("$1")])) -> RenderedDigest {
        DigestRenderer(templates: templates).render(digest)
    }

    @Test("the templates compiled into the binary are the files of data/templates")
    func builtInsMatchData() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.dataTemplates.path).filter { !$0.hasPrefix(".") }
        var files: [String: String] = [:]
        for name in names {
            files[name] = try String(contentsOf: Self.dataTemplates.appendingPathComponent(name), encoding: .utf8)
        }
        #expect(files.count >= 6)
        #expect(Set(EmailTemplates.builtinTemplates.keys) == Set(files.keys))
        for (name, text) in files {
            #expect(EmailTemplates.builtinTemplates[name] == text, "\(name) in the binary differs from data/templates/\(name)")
        }
        let templates = try DigestFixture.builtIn()
        #expect(Set(templates.origins.keys) == Set(names))
        #expect(templates.origins.values.allSatisfy { $0 == .builtIn })
        for name in ["notif_mail.html", "notif_mail.txt", "room.html", "room.txt", "notif.html", "notif.txt"] {
            #expect(templates.origins[name] == .builtIn, "\(name) is built in")
        }
    }

    @Test("an override directory replaces one file and leaves its sibling built in")
    func overrideOneFile() throws {
        try withDirectory(["notif_mail.txt": "OVERRIDDEN {{summary}} for {{user_id}}\n"]) { dir in
            let templates = try EmailTemplates.load(directory: dir, logger: LogCapture().logger)
            #expect(templates.origins["notif_mail.txt"] == .file(dir + "/notif_mail.txt"))
            #expect(templates.origins["notif_mail.html"] == .builtIn)
            let mail = render(templates)
            #expect(mail.text == "OVERRIDDEN [Matrix] You have a message on Matrix from Bob in the Lunch room for @alice:example.org\n")
            #expect(mail.html.contains("<!DOCTYPE html>"))
            #expect(mail.html.contains("Hi!"))
        }
    }

    @Test("a partial in the override directory is used by the built-in template that includes it")
    func overridePartial() throws {
        try withDirectory(["notif.html": "<p class=\"mine\">{{sender_name}} said {{body_text}}</p>\n"]) { dir in
            let templates = try EmailTemplates.load(directory: dir, logger: LogCapture().logger)
            #expect(templates.origins["notif.html"] == .file(dir + "/notif.html"))
            #expect(templates.origins["room.html"] == .builtIn)
            let mail = render(templates)
            #expect(mail.html.contains("<p class=\"mine\">Bob said Hi!</p>"))
            #expect(mail.html.contains("<!DOCTYPE html>"))      // notif_mail.html: built in
            #expect(mail.html.contains(">Lunch</a></h2>"))       // room.html: built in
            #expect(mail.text.contains("Bob (2026-11-29 14:05 UTC):\nHi!"))  // notif.txt untouched
        }
    }

    @Test("a text override renders as text without saying so: nothing is HTML-escaped")
    func textOverrideIsText() throws {
        try withDirectory(["notif.txt": "> {{sender_name}}: {{body_text}}\n"]) { dir in
            let templates = try EmailTemplates.load(directory: dir, logger: LogCapture().logger)
            let message = DigestFixture.message("$1", body: "a & <b> \"c\"",
                                                context: DigestFixture.context(sender: "Bob & 'Co'"))
            let mail = render(templates, DigestFixture.digest([message]))
            #expect(mail.text.contains("> Bob & 'Co': a & <b> \"c\"\n"))
            #expect(mail.html.contains("a &amp; &lt;b&gt; &quot;c&quot;"))
        }
    }

    @Test("a template directory that does not exist logs one warning naming it and the built-ins are used")
    func missingDirectory() throws {
        let capture = LogCapture()
        let missing = "/nonexistent/pushlog-templates-\(UUID().uuidString)"
        let templates = try EmailTemplates.load(directory: missing, logger: capture.logger)
        let warnings = capture.lines.filter { $0.level >= .warning }
        #expect(warnings.count == 1)
        #expect(warnings.first?.level == .warning)
        #expect(warnings.first?.message.contains(missing) == true)
        #expect(templates.origins.values.allSatisfy { $0 == .builtIn })
        #expect(render(templates).html.contains("<!DOCTYPE html>"))
    }

    @Test("a template_dir that is a file logs one warning and the built-ins are used")
    func directoryIsAFile() throws {
        try withDirectory(["file": "x"]) { dir in
            let capture = LogCapture()
            let templates = try EmailTemplates.load(directory: dir + "/file", logger: capture.logger)
            let warnings = capture.lines.filter { $0.level >= .warning }
            #expect(warnings.count == 1)
            #expect(warnings.first?.message.contains(dir + "/file") == true)
            #expect(templates.origins.values.allSatisfy { $0 == .builtIn })
        }
    }

    @Test("an existing directory logs no warning")
    func existingDirectoryNoWarning() throws {
        try withDirectory(["room.txt": "{{title}}\n"]) { dir in
            let capture = LogCapture()
            _ = try EmailTemplates.load(directory: dir, logger: capture.logger)
            #expect(capture.lines.filter { $0.level >= .warning }.isEmpty)
        }
    }

    @Test("an override that does not parse is an error naming the file and the line")
    func parseErrorNamesFile() throws {
        let room = "<tr><td>\n{{title}}\n{{#messages}}\n<p>never closed</p>\n"
        try withDirectory(["room.html": room, "notif_mail.txt": "fine {{summary}}\n"]) { dir in
            let error = #expect(throws: EmailTemplateError.self) {
                try EmailTemplates.load(directory: dir, logger: LogCapture().logger)
            }
            #expect(error?.file == dir + "/room.html")
            #expect(error?.description.contains(dir + "/room.html") == true)
        }
    }

    @Test("a parse error in a text override reports the file's own line number")
    func textParseErrorLine() throws {
        try withDirectory(["notif.txt": "line one\nline two {{/nothing}}\n"]) { dir in
            let error = #expect(throws: EmailTemplateError.self) {
                try EmailTemplates.load(directory: dir, logger: LogCapture().logger)
            }
            #expect(error?.file == dir + "/notif.txt")
            #expect(error?.line == 2)
        }
    }

    @Test("only .html and .txt files of the directory count, hidden ones do not")
    func otherFilesIgnored() throws {
        try withDirectory(["README.md": "{{#broken", ".notif.html.swp": "{{#broken", "notif.html~": "{{#broken"]) { dir in
            let templates = try EmailTemplates.load(directory: dir, logger: LogCapture().logger)
            #expect(templates.origins.values.allSatisfy { $0 == .builtIn })
            #expect(templates.origins["README.md"] == nil)
        }
    }

    @Test("an override directory may add a partial of its own")
    func newPartial() throws {
        try withDirectory([
            "notif_mail.txt": "{{#rooms}}{{> extra.txt}}{{/rooms}}",
            "extra.txt": "[{{title}}]",
        ]) { dir in
            let templates = try EmailTemplates.load(directory: dir, logger: LogCapture().logger)
            #expect(render(templates).text == "[Lunch]")
        }
    }
}
