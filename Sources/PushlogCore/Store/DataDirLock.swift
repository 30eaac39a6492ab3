import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The data directory's lock files.
///
/// `serve` holds `pushlog.lock` exclusively for its whole life, and so does every command that
/// rewrites state (`cursors rewind`, `replay --rebuild`, `recover`, `compact`): two of them never
/// run at once, and a rewriting command beside a server fails at once (exit 69). `append`
/// and the read-only commands do not take it, since LMDB lets them run beside a server.
/// `compact` replaces the data file, so it also waits for `append.lock`, which every appending
/// process holds shared while it writes. Every rebuild and check holds `shadow.lock` while it
/// uses the shadow databases. Every process holds `open.lock` shared while it opens the LMDB
/// files, and `compact` exclusively while it swaps them. The lock files are made like every file of the data directory
/// (see ``DataDir``).
public final class DataDirLock: @unchecked Sendable {
    private let fd: Int32
    public let path: String

    public struct Busy: Error, CustomStringConvertible {
        public let path: String
        public var description: String {
            "the data directory is in use by a running server or another rewriting command (\(path) is locked)"
        }
    }

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// Takes the exclusive server lock without waiting; throws `Busy` when it is held.
    public static func exclusive(dataDir: String) throws -> DataDirLock {
        try take(dataDir: dataDir, name: "pushlog.lock", operation: LOCK_EX | LOCK_NB)
    }

    /// What a command that rewrites state over several commits holds: the server lock (refused
    /// beside a server) and, waiting for running appenders to finish, the appenders' lock.
    public static func forRewrite(dataDir: String) throws -> [DataDirLock] {
        let server = try exclusive(dataDir: dataDir)
        return [server, try noAppenders(dataDir: dataDir)]
    }

    /// Taken shared by every appending process.
    public static func appender(dataDir: String) throws -> DataDirLock {
        try take(dataDir: dataDir, name: "append.lock", operation: LOCK_SH)
    }

    /// Held by every rebuild and check for as long as it uses the shadow databases (`recover
    /// --dry-run` may run beside a server, so the server lock cannot keep two of them apart);
    /// waits for the one running.
    public static func shadows(dataDir: String) throws -> DataDirLock {
        try take(dataDir: dataDir, name: "shadow.lock", operation: LOCK_EX)
    }

    /// Waits until no appender runs and keeps them out; throws `Busy` after `timeout` seconds.
    public static func noAppenders(dataDir: String, timeout: Double = 30) throws -> DataDirLock {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            do { return try take(dataDir: dataDir, name: "append.lock", operation: LOCK_EX | LOCK_NB) } catch is Busy {
                if Date() > deadline { throw Busy(path: dataDir + "/append.lock") }
                usleep(50_000)
            }
        }
    }

    /// Held shared while a process opens the store's LMDB files (`lock.mdb`, then `data.mdb`),
    /// and exclusively by `compact` while it puts the compacted `data.mdb` in place and removes
    /// `lock.mdb`: no opener pairs the old lock file with the new data file. (A reader that did
    /// would read the new file under a lock table that no writer uses any more.) Nil when the
    /// lock file cannot be made, as for a read-only command in a directory it may not write:
    /// such an opener goes without.
    public static func opening(dataDir: String) -> DataDirLock? {
        try? take(dataDir: dataDir, name: "open.lock", operation: LOCK_SH)
    }

    /// What `compact` holds while it replaces the data file (see ``opening(dataDir:)``).
    public static func replacingFiles(dataDir: String) throws -> DataDirLock {
        try take(dataDir: dataDir, name: "open.lock", operation: LOCK_EX)
    }

    private static func take(dataDir: String, name: String, operation: Int32) throws -> DataDirLock {
        try DataDir.create(dataDir)
        let path = dataDir + "/" + name
        let fd = try DataDir.openFile(name, in: dataDir)
        if flock(fd, operation) != 0 {
            let e = errno
            close(fd)
            if e == EWOULDBLOCK { throw Busy(path: path) }
            throw POSIXError(POSIXErrorCode(rawValue: e) ?? .EIO)
        }
        return DataDirLock(fd: fd, path: path)
    }
}
