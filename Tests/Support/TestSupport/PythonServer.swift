import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The one way tests start their Python servers (`Tests/Support/*.py`: the push gateway, the
/// HTTP test server, the SMTP server), and the other helper programs they run (openssl).
///
/// The interpreter is `.build/venv/bin/python3` when `Tools/python-venv.sh` made it (it has
/// aiosmtpd), else `python3` from the PATH.
///
/// Why not Foundation's `Process`: `waitUntilExit()` can hang inside Swift Testing on Linux,
/// and `Process` reaps its child itself, racing any `waitpid` here. A child is spawned with
/// `posix_spawnp`, stopped with `kill` and reaped with `waitpid`. Each server also exits by
/// itself when its stdin closes, so a test process that dies leaves no server behind.
public enum PythonServer {
    /// The package's root directory, found from this file's path.
    public static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `Tests/Support/<name>`.
    public static func script(_ name: String) -> String {
        packageRoot.appendingPathComponent("Tests/Support").appendingPathComponent(name).path
    }

    /// The virtualenv's python3 when there is one, else `python3` (looked up in the PATH).
    public static var interpreter: String {
        let venv = packageRoot.appendingPathComponent(".build/venv/bin/python3").path
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : "python3"
    }

    /// Starts `python3 -u Tests/Support/<script> arguments…` with its stdin and stdout connected
    /// to the returned ``ChildProcess`` and its stderr going to `stderrPath` (or nowhere).
    public static func start(_ script: String, arguments: [String] = [], stderrPath: String? = nil) throws -> ChildProcess {
        try ChildProcess.spawn([interpreter, "-u", Self.script(script)] + arguments, stderrPath: stderrPath)
    }
}

/// A child process and the parent's ends of its stdin and stdout (socket pairs).
public struct ChildProcess: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let pid: pid_t
    /// Writing here reaches the child's stdin; closing it tells a test server to exit.
    public let stdin: Int32
    /// The child's stdout; read it on a thread of its own (reads block).
    public let stdout: Int32

    /// Starts `arguments` (the first looked up in the PATH) with stderr to `stderrPath` (or
    /// /dev/null).
    public static func spawn(_ arguments: [String], stderrPath: String? = nil) throws -> ChildProcess {
        var input: [Int32] = [0, 0]
        var output: [Int32] = [0, 0]
        // Socket pairs rather than pipes because they can be created close-on-exec atomically
        // (`pipe2` is not imported): other children spawned meanwhile by concurrent tests must
        // not inherit these ends, or this child's stdout would never reach end-of-file.
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard socketpair(AF_UNIX, type, 0, &input) == 0 else { throw Failure(description: "socketpair: errno \(errno)") }
        guard socketpair(AF_UNIX, type, 0, &output) == 0 else {
            close(input[0]); close(input[1])
            throw Failure(description: "socketpair: errno \(errno)")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)

        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let code = posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ)
        close(input[0])
        close(output[1])
        guard code == 0 else {
            close(input[1]); close(output[0])
            throw Failure(description: "cannot run \(arguments[0]): \(String(cString: strerror(code)))")
        }
        return ChildProcess(pid: pid, stdin: input[1], stdout: output[0])
    }

    /// Runs `arguments` to completion; throws with its stderr unless it exits 0.
    public static func run(_ arguments: [String]) throws {
        let stderrPath = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-run-\(UUID().uuidString).stderr").path
        defer { unlink(stderrPath) }
        let child = try spawn(arguments, stderrPath: stderrPath)
        close(child.stdin)
        close(child.stdout)
        let status = reap(child.pid)
        guard status == 0 else {
            let errors = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
            throw Failure(description: "\(arguments.joined(separator: " ")) failed (status \(status)): \(errors)")
        }
    }

    /// Waits for `pid` to end; its wait status.
    @discardableResult
    public static func reap(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status
    }

    /// Kills the child (SIGKILL), reaps it and closes stdin. stdout stays open for its reader,
    /// which then sees end-of-file and closes it.
    public func kill() {
        Glibc.kill(pid, SIGKILL)
        Self.reap(pid)
        close(stdin)
    }

    /// Reads stdout up to the first newline (blocking); nil at end-of-file. Only before a
    /// reader thread has taken over stdout.
    public func readLine() -> String? {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let n = read(stdout, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            guard n == 1 else { return nil }
            if byte == 0x0A { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
    }
}
