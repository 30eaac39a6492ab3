import Foundation
import Testing

/// The repository's documentation holds to the repository: every relative link resolves to a
/// file in the tree, `docs/api.md` and `docs/openapi.yaml` describe the same operations, and
/// the Grafana dashboard is valid JSON that names real metrics.
@Suite("Documentation")
struct DocumentationTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Files another branch adds; links to them are allowed until it is merged (then this list
    /// is emptied).
    static let writtenOnOtherBranches: Set<String> = []

    /// Metric names of the contract whose code is on another branch (delivery engine, Synapse
    /// follower); emptied once merged.
    static let metricsOnOtherBranches: Set<String> = []

    static func text(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    /// README.md and every Markdown file under docs/, as paths relative to the root.
    static func markdownFiles() throws -> [String] {
        let docs = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("docs").path)
            .filter { $0.hasSuffix(".md") }.sorted().map { "docs/" + $0 }
        return ["README.md"] + docs
    }

    /// The targets of the Markdown links `[text](target)` in `text`, outside code spans and blocks.
    static func links(in text: String) -> [String] {
        var out: [String] = []
        var inFence = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.trimmingCharacters(in: .whitespaces).hasPrefix("```") { inFence.toggle(); continue }
            if inFence { continue }
            // Drop code spans, so `[x](y)` written as code is not a link.
            let prose = line.split(separator: "`", omittingEmptySubsequences: false).enumerated()
                .filter { $0.offset % 2 == 0 }.map(\.element).joined(separator: " ")
            var rest = Substring(prose)
            while let open = rest.range(of: "](") {
                let after = rest[open.upperBound...]
                guard let close = after.firstIndex(of: ")") else { break }
                out.append(String(after[..<close]).trimmingCharacters(in: .whitespaces))
                rest = after[close...]
            }
        }
        return out
    }

    @Test("every relative link in README.md and docs/*.md resolves to a file in the repository")
    func linksResolve() throws {
        let rootPath = Self.root.standardizedFileURL.path
        for file in try Self.markdownFiles() {
            let base = Self.root.appendingPathComponent(file).deletingLastPathComponent()
            for link in Self.links(in: try Self.text(file)) {
                if link.hasPrefix("http://") || link.hasPrefix("https://") || link.hasPrefix("mailto:") || link.hasPrefix("#") { continue }
                let path = String(link.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0])
                let target = base.appendingPathComponent(path).standardizedFileURL.path
                #expect(target.hasPrefix(rootPath + "/"), "\(file): link '\(link)' leaves the repository")
                let relative = String(target.dropFirst(rootPath.count + 1))
                if Self.writtenOnOtherBranches.contains(relative) { continue }
                #expect(FileManager.default.fileExists(atPath: target), "\(file): link '\(link)' names no file")
            }
        }
    }

    @Test("the link check finds links and skips code")
    func linkExtraction() {
        let text = "See [api](docs/api.md) and `[not](a link)`.\n```\n[code](x.md)\n```\n[b](c.md#part)"
        #expect(Self.links(in: text) == ["docs/api.md", "c.md#part"])
    }

    @Test("no link in README.md or docs/ points at ../shared or outside the tree")
    func noOutsideReferences() throws {
        for file in try Self.markdownFiles() {
            #expect(!(try Self.text(file)).contains("../shared"), "\(file) mentions ../shared")
        }
    }

    @Test("the README's two commands say what Tools/run.sh and Tools/test.sh run")
    func readmeCommandsMatchScripts() throws {
        let readme = try Self.text("README.md")
        for script in ["Tools/run.sh", "Tools/test.sh"] {
            let line = try #require(readme.split(separator: "\n").first { $0.hasPrefix(script + " ") }, "README.md has no line for \(script)")
            let code = line.split(separator: "`", omittingEmptySubsequences: false).enumerated()
                .filter { $0.offset % 2 == 1 }.map { String($0.element) }
            #expect(!code.isEmpty, "README.md: the \(script) line quotes no command")
            let body = try Self.text(script)
            for command in code {
                #expect(body.contains(command), "README.md says \(script) runs `\(command)`; it does not")
            }
        }
        let test = try Self.text("Tools/test.sh")
        #expect(test.contains("swift build --build-tests") && test.contains("swift test --skip-build --no-parallel"),
                "Tools/test.sh changed: update its line in README.md and this test")
    }

    @Test("the README says how releases are numbered, and where the version lives")
    func readmeReleases() throws {
        let readme = try Self.text("README.md")
        #expect(readme.contains("## Releases"))
        #expect(readme.contains("pushlog --version") && readme.contains("Sources/pushlog/Version.swift"))
        #expect(FileManager.default.fileExists(atPath: Self.root.appendingPathComponent("Sources/pushlog/Version.swift").path))
    }

    /// `(METHOD, path)` of every operation in `docs/openapi.yaml` (paths at indent 2, methods at 4).
    static func openAPIOperations() throws -> Set<String> {
        var out: Set<String> = []
        var inPaths = false
        var path: String?
        for line in try text("docs/openapi.yaml").split(separator: "\n") {
            if !line.hasPrefix(" ") { inPaths = line.hasPrefix("paths:"); path = nil; continue }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), let colon = line.lastIndex(of: ":") {
                path = String(line[line.index(line.startIndex, offsetBy: 2)..<colon])
            } else if line.hasPrefix("    "), !line.hasPrefix("     "), let path {
                let word = line.trimmingCharacters(in: .whitespaces).dropLast()
                if ["get", "put", "post", "delete", "patch", "head", "options"].contains(String(word)) {
                    out.insert("\(word.uppercased()) \(path)")
                }
            }
        }
        return out
    }

    /// `(METHOD, path)` of every endpoint heading in `docs/api.md`: `` ## `GET /v1/pushers` ``.
    static func apiDocOperations() throws -> Set<String> {
        var out: Set<String> = []
        for line in try text("docs/api.md").split(separator: "\n") where line.hasPrefix("## `") || line.hasPrefix("### `") {
            let inner = line.split(separator: "`", omittingEmptySubsequences: false)
            guard inner.count >= 2 else { continue }
            let parts = inner[1].split(separator: " ")
            if parts.count == 2, ["GET", "PUT", "POST", "DELETE", "PATCH"].contains(String(parts[0])) {
                out.insert("\(parts[0]) \(parts[1].split(separator: "?")[0])")
            }
        }
        return out
    }

    @Test("docs/api.md documents every operation of docs/openapi.yaml, and no other")
    func apiMatchesOpenAPI() throws {
        let spec = try Self.openAPIOperations()
        let doc = try Self.apiDocOperations()
        #expect(spec.count >= 10, "read too few operations from docs/openapi.yaml: \(spec.sorted())")
        for op in spec.subtracting(doc).sorted() { Issue.record("docs/api.md has no section `\(op)` (in docs/openapi.yaml)") }
        for op in doc.subtracting(spec).sorted() { Issue.record("docs/api.md documents `\(op)`, which docs/openapi.yaml lacks") }
    }

    @Test("docs/api.md lists every errcode the server can answer")
    func everyErrcodeDocumented() throws {
        let source = try Self.text("Sources/PushlogServer/APIError.swift")
        let regex = try NSRegularExpression(pattern: "\"(M_[A-Z_]+)\"")
        let ns = source as NSString
        let codes = Set(regex.matches(in: source, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range(at: 1)) })
        #expect(codes.count >= 10)
        let doc = try Self.text("docs/api.md")
        for code in codes.sorted() { #expect(doc.contains("`\(code)`"), "docs/api.md does not list \(code)") }
    }

    @Test("every endpoint section of docs/api.md has a worked curl")
    func everyEndpointHasCurl() throws {
        let sections = try Self.text("docs/api.md").components(separatedBy: "\n## ").dropFirst()
        for section in sections where section.hasPrefix("`") {
            let title = section.prefix { $0 != "\n" }
            #expect(section.contains("curl "), "docs/api.md: \(title) has no curl example")
        }
    }

    /// Every `pushlog_…` name the sources use (labels, rendered text), the docs generator aside.
    static func knownMetricNames() throws -> Set<String> {
        var names = metricsOnOtherBranches
        let sources = root.appendingPathComponent("Sources")
        let walker = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)
        while let url = walker?.nextObject() as? URL {
            guard url.pathExtension == "swift", url.lastPathComponent != "Config+Docs.swift" else { continue }
            names.formUnion(metricNames(in: try String(contentsOf: url, encoding: .utf8)))
        }
        return names
    }

    static func metricNames(in text: String) -> Set<String> {
        let regex = try! NSRegularExpression(pattern: "pushlog_[a-z0-9_]*[a-z0-9]")
        let ns = text as NSString
        return Set(regex.matches(in: text, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range) })
    }

    /// A name is known as itself, or as a histogram's `_bucket`, `_sum` or `_count` series.
    static func isKnown(_ name: String, in known: Set<String>) -> Bool {
        if known.contains(name) { return true }
        return ["_bucket", "_sum", "_count"].contains { name.hasSuffix($0) && known.contains(String(name.dropLast($0.count))) }
    }

    @Test("docs/grafana/pushlog.json loads as a Grafana 11 dashboard whose queries name real metrics")
    func grafanaDashboard() throws {
        let data = try Data(contentsOf: Self.root.appendingPathComponent("docs/grafana/pushlog.json"))
        let object = try JSONSerialization.jsonObject(with: data)
        let dashboard = try #require(object as? [String: Any])
        let schema = try #require(dashboard["schemaVersion"] as? Int)
        #expect(schema >= 39)
        #expect(dashboard["title"] as? String != nil && dashboard["uid"] as? String != nil)
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        #expect(panels.count >= 8)
        var exprs: [String] = []
        for panel in panels {
            for target in panel["targets"] as? [[String: Any]] ?? [] {
                if let expr = target["expr"] as? String { exprs.append(expr) }
            }
            if panel["type"] as? String != "row" {
                #expect(!(panel["targets"] as? [[String: Any]] ?? []).isEmpty, "panel '\(panel["title"] ?? "?")' has no query")
            }
        }
        let known = try Self.knownMetricNames()
        for name in exprs.flatMap(Self.metricNames(in:)) {
            #expect(Self.isKnown(name, in: known), "the dashboard queries \(name), which no source defines")
        }
    }

    @Test("every metric named in docs/operations.md exists")
    func operationsMetrics() throws {
        let known = try Self.knownMetricNames()
        for name in Self.metricNames(in: try Self.text("docs/operations.md")) {
            #expect(Self.isKnown(name, in: known), "docs/operations.md names \(name), which no source defines")
        }
    }
}
