import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// What `serve` refuses before it touches the data directory: blank tokens, a bad token file,
/// unknown `PUSHLOG_…` variables. Each is exit 64 with one stderr line naming the key.
@Suite("serve refuses a bad configuration at start-up")
struct StartupRefusalTests {
    /// Runs `serve` on a fresh sandbox with `environment` (and `--config` with `yaml` when given).
    func serve(_ box: Sandbox, environment: [String: String] = [:], yaml: String? = nil) throws -> RunResult {
        var args = ["serve", "--data-dir", box.dataDir, "--listen", "127.0.0.1:0"]
        if let yaml { args += ["--config", try box.file("pushlog-\(UUID().uuidString).yaml", Data(yaml.utf8))] }
        return try box.runRaw(args, environment: environment, timeout: 30)
    }

    /// Exit 64, one stderr line naming `key` (and each of `naming`), and no data directory made.
    func expectRefused(_ r: RunResult, key: String, naming: [String] = [], box: Sandbox,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 64, "\(r)", sourceLocation: sourceLocation)
        #expect(r.errLines.count == 1, "\(r.err)", sourceLocation: sourceLocation)
        #expect(r.err.contains("'\(key)'"), "names \(key): \(r.err)", sourceLocation: sourceLocation)
        for word in naming { #expect(r.err.contains(word), "names \(word): \(r.err)", sourceLocation: sourceLocation) }
        #expect(!FileManager.default.fileExists(atPath: box.dataDir), "nothing created", sourceLocation: sourceLocation)
    }

    @Test("a blank or whitespace api.token or metrics.token, from the environment or the file, stops serve with 64 naming the key")
    func blankTokens() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        expectRefused(try serve(box, environment: ["PUSHLOG_API_TOKEN": ""]), key: "api.token", naming: ["PUSHLOG_API_TOKEN"], box: box)
        expectRefused(try serve(box, environment: ["PUSHLOG_API_TOKEN": "  \t "]), key: "api.token", box: box)
        expectRefused(try serve(box, yaml: "api:\n  token: \"\"\n"), key: "api.token", box: box)
        expectRefused(try serve(box, yaml: "api:\n  token: \"   \"\n"), key: "api.token", box: box)
        expectRefused(try serve(box, environment: ["PUSHLOG_METRICS_TOKEN": ""]), key: "metrics.token", box: box)
        expectRefused(try serve(box, yaml: "metrics:\n  token: \" \"\n"), key: "metrics.token", box: box)
    }

    @Test("api.token_file that is missing, unreadable or blank, or set beside api.token, stops serve with 64 naming the key and the path")
    func badTokenFiles() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let missing = box.root.appendingPathComponent("no-such-token").path
        expectRefused(try serve(box, environment: ["PUSHLOG_API_TOKEN_FILE": missing]), key: "api.token_file",
                      naming: [missing, "No such file or directory"], box: box)
        // A directory cannot be read as a file, even by root (which the CI runs as).
        let directory = box.root.appendingPathComponent("token-dir").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        expectRefused(try serve(box, environment: ["PUSHLOG_API_TOKEN_FILE": directory]), key: "api.token_file",
                      naming: [directory, "Is a directory"], box: box)
        if getuid() != 0 {
            let locked = try box.file("locked-token", Data("s3cret\n".utf8))
            chmod(locked, 0)
            expectRefused(try serve(box, environment: ["PUSHLOG_API_TOKEN_FILE": locked]), key: "api.token_file",
                          naming: [locked, "Permission denied"], box: box)
        }
        let blank = try box.file("blank-token", Data(" \n\t\n".utf8))
        expectRefused(try serve(box, environment: ["PUSHLOG_API_TOKEN_FILE": blank]), key: "api.token_file", naming: [blank], box: box)
        let good = try box.file("token", Data("s3cret\n".utf8))
        expectRefused(try serve(box, environment: ["PUSHLOG_API_TOKEN_FILE": good, "PUSHLOG_API_TOKEN": "other"]),
                      key: "api.token_file", naming: ["api.token"], box: box)
        expectRefused(try serve(box, environment: ["PUSHLOG_API_TOKEN_FILE": ""]), key: "api.token_file", box: box)
    }

    @Test("an unknown PUSHLOG_ variable stops serve with 64 naming it, as an unknown YAML key does")
    func unknownVariable() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        expectRefused(try serve(box, environment: ["PUSHLOG_API_TOKN": "x"]), key: "PUSHLOG_API_TOKN", box: box)
        expectRefused(try serve(box, yaml: "api:\n  tokn: x\n"), key: "api.tokn", box: box)
    }

    @Test("the PUSHLOG_ variables that are read elsewhere (PUSHLOG_BIN) and the configuration variables (PUSHLOG_DATA_DIR) do not stop serve")
    func knownVariables() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let server = try ServeProcess(dataDir: box.dataDir, environment: [
            "PUSHLOG_BIN": try pushlogBinary(), "PUSHLOG_DATA_DIR": box.dataDir,
            "PUSHLOG_LOG_LEVEL": "info",
        ])
        #expect(server.port > 0)
        #expect(server.stop(SIGTERM) == .exited(0))
    }
}

/// Errors the command did not expect are one line naming the path and the system's reason,
/// never Foundation's dump of its error domain.
@Suite("errors are one line naming the path and the reason")
struct ErrorLineTests {
    /// `status` nil: any failure.
    func expectOneLine(_ r: RunResult, status: Int32?, naming words: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(status.map { r.status == $0 } ?? (r.status != 0), "\(r)", sourceLocation: sourceLocation)
        #expect(!r.timedOut && !r.signaled, "\(r)", sourceLocation: sourceLocation)
        #expect(r.errLines.count == 1, "\(r.err)", sourceLocation: sourceLocation)
        for word in words { #expect(r.err.contains(word), "names \(word): \(r.err)", sourceLocation: sourceLocation) }
        for dump in ["Domain=", "Code=", "NSError", "UserInfo", "POSIXError", "CocoaError"] {
            #expect(!r.err.contains(dump), "no Foundation dump: \(r.err)", sourceLocation: sourceLocation)
        }
    }

    @Test("serve --config with a missing file: 64, cannot read PATH: No such file or directory")
    func missingConfig() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let path = box.root.appendingPathComponent("missing.yaml").path
        let r = try box.runRaw(["serve", "--data-dir", box.dataDir, "--listen", "127.0.0.1:0", "--config", path])
        expectOneLine(r, status: 64, naming: ["cannot read \(path): No such file or directory"])
        #expect(!FileManager.default.fileExists(atPath: box.dataDir))
    }

    @Test("an input file that cannot be read, for append and pushers set: 65, cannot read PATH: reason, nothing appended")
    func unreadableInput() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        // A directory is unreadable as a file even to root; a mode-0 file only to others.
        let directory = box.root.appendingPathComponent("input-dir").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        expectOneLine(try box.run(["append", "notifications", directory]), status: 65,
                      naming: ["cannot read \(directory): Is a directory"])
        expectOneLine(try box.run(["pushers", "set", directory]), status: 65, naming: ["cannot read \(directory): Is a directory"])
        if getuid() != 0 {
            let locked = try box.file("locked.jsonl", lines: [Make.notificationLine(event: "$1", so: 1)])
            chmod(locked, 0)
            expectOneLine(try box.run(["append", "notifications", locked]), status: 65,
                          naming: ["cannot read \(locked): Permission denied"])
        }
        #expect(try box.run(["stats"]).status == 66, "nothing appended: no store was even made")
    }

    @Test("a data directory that is a regular file: one line naming it and the reason, for append and serve")
    func dataDirIsAFile() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let file = try box.file("not-a-dir", Data("x".utf8))
        let input = try box.file("n.jsonl", lines: [Make.notificationLine(event: "$1", so: 1)])
        let append = try box.start(["append", "notifications", input], dataDir: file).wait(timeout: 60)
        expectOneLine(append, status: nil, naming: [file])
        let serve = try box.runRaw(["serve", "--data-dir", file, "--listen", "127.0.0.1:0"])
        expectOneLine(serve, status: nil, naming: [file])
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "x", "the file is untouched")
    }

    @Test("pushlog --version prints the version")
    func version() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let r = try box.runRaw(["--version"])
        #expect(r.status == 0, "\(r)")
        #expect(r.outLines.count == 1 && r.out.split(separator: ".").count == 3, "a version such as 0.2.0: \(r.out)")
    }
}
