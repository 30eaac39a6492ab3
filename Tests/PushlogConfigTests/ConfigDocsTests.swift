import Foundation
@testable import PushlogConfig
import Testing

/// `docs/configuration.md` is generated from `Config.documentation`: these tests keep the two,
/// and the setters, in step. `PUSHLOG_WRITE_DOCS=1 swift test --filter ConfigDocs` rewrites the
/// file instead of comparing it.
@Suite("Configuration docs")
struct ConfigDocsTests {
    static let page = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/configuration.md")

    @Test("every configuration key has documentation")
    func everyKeyDocumented() {
        let documented = Set(Config.documentation.map(\.key))
        for key in Config.keys {
            #expect(documented.contains(key), "'\(key)' has a setter but no entry in Config.documentation (Config+Docs.swift)")
        }
    }

    @Test("every documented key is a configuration key, or one documented ahead of its setter")
    func noStaleDocs() {
        let keys = Set(Config.keys)
        for doc in Config.documentation {
            #expect(keys.contains(doc.key) || Config.documentedAheadOfSetters.contains(doc.key),
                    "'\(doc.key)' is documented but has no setter")
        }
        for key in Config.documentedAheadOfSetters {
            #expect(!keys.contains(key), "'\(key)' now has a setter: remove it from Config.documentedAheadOfSetters")
            #expect(Config.documentation.contains { $0.key == key }, "'\(key)' is in documentedAheadOfSetters but not documented")
        }
        let all = Config.documentation.map(\.key)
        #expect(Set(all).count == all.count, "a key is documented twice")
    }

    @Test("every entry says its default, its meaning and its trade-off")
    func entriesComplete() {
        for doc in Config.documentation {
            #expect(!doc.defaultText.isEmpty && !doc.meaning.isEmpty && !doc.tradeOff.isEmpty, "'\(doc.key)' has an empty field")
            #expect(!doc.meaning.contains("\n") && !doc.tradeOff.contains("\n"), "'\(doc.key)': one paragraph each")
        }
    }

    @Test("every other PUSHLOG_ variable is documented")
    func otherVariablesDocumented() {
        for name in Config.otherEnvironmentNames {
            #expect(Config.otherEnvironmentDocs[name] != nil, "\(name) is in otherEnvironmentNames but not documented")
        }
    }

    @Test("docs/configuration.md is the generated text")
    func pageIsGenerated() throws {
        let generated = Config.configurationMarkdown()
        if ProcessInfo.processInfo.environment["PUSHLOG_WRITE_DOCS"] == "1" {
            try generated.write(to: Self.page, atomically: true, encoding: .utf8)
        }
        let onDisk = try String(contentsOf: Self.page, encoding: .utf8)
        #expect(onDisk == generated, "docs/configuration.md differs from Config+Docs.swift: run PUSHLOG_WRITE_DOCS=1 swift test --filter ConfigDocs")
        for key in Config.keys {
            #expect(onDisk.contains("### `\(key)`"), "docs/configuration.md lacks '\(key)'")
            #expect(onDisk.contains(Config.environmentName(key)))
        }
    }
}
