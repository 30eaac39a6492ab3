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

/// Decodes JSON Lines input; a bad line's error names the file too.
func decodeLines<T>(_ input: [UInt8], file: String, _ decode: (JSON) throws -> T) throws -> [T] {
    do {
        return try JSONLines.decode(input, decode)
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
