import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The data directory and the files Pushlog creates in it.
///
/// The directory is created 0700 and every file in it 0600, the mode given at creation and set
/// again right after (a umask can only take bits away; this makes the mode exact whatever the
/// umask). The store holds every user's pushkeys and email addresses.
///
/// Run as root (an operator's `pushlog append` on the service's directory), a file created
/// here takes the directory's owner and group, so the service user can still open it: a root
/// `append.lock` would otherwise lock the service out of the CLI.
public enum DataDir {
    public static let directoryMode: mode_t = 0o700
    public static let fileMode: mode_t = 0o600
    public static let dataFile = "data.mdb"

    /// There is no store at `path`: what read-only commands answer instead of creating one.
    public struct NoStore: Error, CustomStringConvertible {
        public let path: String
        public init(path: String) { self.path = path }
        public var description: String { "no store at \(path)" }
    }

    /// A file or directory the data directory needs could not be made or opened.
    public struct FileError: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }

        init(_ path: String, errno code: Int32) {
            self.path = path
            reason = String(cString: strerror(code))
        }
    }

    /// Whether a store exists at `path` (its data file does). Creates nothing.
    public static func hasStore(_ path: String) -> Bool {
        access(path + "/" + dataFile, F_OK) == 0
    }

    /// Creates the directory 0700 when it is missing (its missing parents with the usual mode).
    public static func create(_ path: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw FileError(path, errno: ENOTDIR) }
            return
        }
        try createParents(of: path)
        if mkdir(path, directoryMode) != 0 {
            let e = errno
            if e == EEXIST { return }  // made by a process racing with us
            throw FileError(path, errno: e)
        }
        chmod(path, directoryMode)
    }

    private static func createParents(of path: String) throws {
        let parent = (path as NSString).deletingLastPathComponent
        guard !parent.isEmpty, parent != path, access(parent, F_OK) != 0 else { return }
        try createParents(of: parent)
        if mkdir(parent, 0o755) != 0 && errno != EEXIST { throw FileError(parent, errno: errno) }
    }

    /// Opens (creating it 0600 when missing) a file in the data directory `dir`.
    public static func openFile(_ name: String, in dir: String, flags: Int32 = O_RDWR) throws -> Int32 {
        let path = dir + "/" + name
        var created = true
        var fd = open(path, flags | O_CREAT | O_EXCL | O_CLOEXEC, fileMode)
        if fd < 0 && errno == EEXIST {
            created = false
            fd = open(path, flags | O_CLOEXEC)
        }
        guard fd >= 0 else { throw FileError(path, errno: errno) }
        if created {
            fchmod(fd, fileMode)
            adoptOwner(fd: fd, dir: dir)
        }
        return fd
    }

    /// Gives the store's own files (made by LMDB, which cannot be told an owner) the right mode
    /// and owner; also tightens files an older version created 0644. Failures are left to the
    /// next open to report: this is best effort on files that exist.
    ///
    /// By path, never through a file descriptor: LMDB holds a POSIX record lock on `lock.mdb`,
    /// and closing *any* descriptor of that file drops every such lock of the process. A reader
    /// opening the store next would then find it unlocked, take itself for the first user and
    /// reset the lock table under the running writer, which lost committed batches (`append`
    /// beside `stats`).
    public static func secureStoreFiles(in dir: String) {
        for name in [dataFile, "lock.mdb"] {
            let path = dir + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { continue }
            if st.st_mode & 0o777 != fileMode && st.st_uid == geteuid() {
                chmod(path, fileMode)
            }
            if let owner = ownerToAdopt(st, dir: dir) { _ = lchown(path, owner.st_uid, owner.st_gid) }
        }
    }

    /// As root, hands the open file `fd` to the owner of `dir`; otherwise nothing (a non-root
    /// process can only create files it owns, in a directory it may write).
    static func adoptOwner(fd: Int32, dir: String) {
        var f = stat()
        guard fstat(fd, &f) == 0, let owner = ownerToAdopt(f, dir: dir) else { return }
        _ = fchown(fd, owner.st_uid, owner.st_gid)
    }

    /// `dir`'s status when run as root and the file `file` describes is not owned by `dir`'s
    /// owner and group: whose the file should become. Nil otherwise.
    private static func ownerToAdopt(_ file: stat, dir: String) -> stat? {
        guard geteuid() == 0 else { return nil }
        var d = stat()
        guard stat(dir, &d) == 0, file.st_uid != d.st_uid || file.st_gid != d.st_gid else { return nil }
        return d
    }
}
