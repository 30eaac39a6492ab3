import ArgumentParser
import Foundation
import LMDB
import PushlogCore

@main
struct Pushlog: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pushlog",
        abstract: "Push notifications for Matrix homeservers, from an LMDB log.",
        version: pushlogVersion,
        subcommands: [Serve.self, Append.self, Pushers.self, Cursors.self, Replay.self, Recover.self,
                      Compact.self, Stats.self, Follow.self]
    )

    /// ArgumentParser's own, after a mistyped subcommand got its suggestion.
    static func main() async {
        if let error = CommandSuggestion.check(Array(CommandLine.arguments.dropFirst()), root: Pushlog.self) {
            FileHandle.standardError.write(Data(error.utf8))
            Foundation.exit(Exit.usage)
        }
        await main(nil)
    }
}

/// `--data-dir`, shared by every subcommand.
struct DataDirOption: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: ArgumentHelp("The data directory (env PUSHLOG_DATA_DIR; default ./pushlog-data).", valueName: "path"))
    var explicitDataDir: String?

    var dataDir: String { explicitDataDir ?? ProcessInfo.processInfo.environment["PUSHLOG_DATA_DIR"] ?? "./pushlog-data" }

    func openStore() throws -> Store {
        try Store(dataDir: dataDir)
    }

    /// For read-only commands: a missing store is exit 66 and nothing is created.
    func openExistingStore() throws -> Store {
        try Store(dataDir: dataDir, options: StoreOptions(createIfMissing: false))
    }
}

/// An id given on the command line, held to the bounds it has in a body: it becomes a store key.
func checkOption(_ value: String?, _ name: String, _ check: (String, String) throws -> Void) throws {
    if let value { try check(value, name) }
}

/// A test hook, off unless `TEST_PUSHLOG_PAUSE_REBUILD` is set: once a repair's first change to
/// the projections has committed, say so on stderr and wait to be killed, so that a test can
/// crash the process at the moment the projections are half-replaced. (Outside the `PUSHLOG_`
/// names, which are configuration.)
func rebuildTestPause() -> (() -> Void)? {
    guard ProcessInfo.processInfo.environment["TEST_PUSHLOG_PAUSE_REBUILD"] != nil else { return nil }
    return {
        FileHandle.standardError.write(Data("test pause: repair under way\n".utf8))
        while true { pause() }
    }
}

/// The contract's exit codes.
enum Exit {
    static let usage: Int32 = 64
    static let badInput: Int32 = 65
    static let noStore: Int32 = 66
    static let busy: Int32 = 69
    static let internalError: Int32 = 70
}

/// Runs a command body, turning what it throws into one stderr line and the contract's exit code.
func tool(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch {
        try failure(for: error)
    }
}

/// ``tool(_:)`` for an async body.
func tool(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch {
        try failure(for: error)
    }
}

/// The one stderr line and exit code of what a command threw (`ExitCode` passes through).
private func failure(for error: any Error) throws -> Never {
    do {
        throw error
    } catch let e as ExitCode {
        throw e
    } catch let e as InputError {
        fail(Exit.badInput, "\(e)")
    } catch let e as FileInputError {
        fail(Exit.badInput, "\(e)")
    } catch let e as FileText.Failure {
        fail(Exit.badInput, "\(e)")
    } catch let e as DataDirLock.Busy {
        fail(Exit.busy, "\(e)")
    } catch let e as DataDir.NoStore {
        fail(Exit.noStore, "\(e)")
    } catch let e as UsageError {
        fail(Exit.usage, e.message)
    } catch {
        fail(Exit.internalError, errorLine(error))
    }
}

struct UsageError: Error {
    let message: String
}

func fail(_ code: Int32, _ message: String) -> Never {
    Output.flush()
    FileHandle.standardError.write(Data("pushlog: error: \(message)\n".utf8))
    exit(code)
}

func note(_ message: String) {
    FileHandle.standardError.write(Data("\(message)\n".utf8))
}

/// Decodes JSON Lines input; a bad line's error names the file too. `progress` follows the
/// lines validated (a million-line import validates for a while before it appends).
func decodeLines<T>(_ input: [UInt8], file: String, progress: ProgressBar? = nil,
                    _ decode: (JSON) throws -> T) throws -> [T] {
    let total = progress?.isEnabled == true ? UInt64(input.withUnsafeBufferPointer { $0.count { $0 == 0x0A } }) : 0
    var done: UInt64 = 0
    defer { progress?.finish() }
    do {
        let values = try JSONLines.decode(input) { json in
            done += 1
            if done % 10_000 == 0 { progress?.update(done, of: max(total, done)) }
            return try decode(json)
        }
        progress?.update(done, of: done)
        return values
    } catch let e as InputError {
        throw FileInputError(file: file == "-" ? "<stdin>" : file, error: e)
    }
}

struct FileInputError: Error, CustomStringConvertible {
    let file: String
    let error: InputError
    var description: String { "\(file): \(error)" }
}

/// Reads FILE, or standard input for `-`.
func readInput(_ path: String) throws -> [UInt8] {
    if path == "-" {
        return Array(FileHandle.standardInput.readDataToEndOfFile())
    }
    return try FileText.read(path)
}
