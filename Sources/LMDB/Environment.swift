import CLMDB
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How hard a commit pushes to the disk.
public enum Durability: String, Sendable, CaseIterable {
    /// Data then meta page fsynced on every commit: full ACID.
    case sync
    /// The meta page is synced with the next commit: a system crash may undo the last commit,
    /// a process crash loses nothing.
    case nometasync
}

public struct EnvironmentOptions: Sendable {
    public var maxDatabases: UInt32 = 32
    public var maxReaders: UInt32 = 510
    /// The initial map size; the map grows on `MDB_MAP_FULL` whatever this says.
    public var mapSize: Int = 256 << 20
    public var durability: Durability = .sync
    public init() {}
}

/// An LMDB environment: one directory, one memory map, many named databases.
///
/// Opened with `MDB_NOTLS`, so a read transaction is tied to its `Transaction` object, not to a
/// thread. Write transactions are serialised by LMDB's own writer lock; the trap to know is that a
/// write transaction belongs to the thread that began it, so never `await` inside `write { }`.
/// Open one `Environment` per directory per process.
public final class Environment: @unchecked Sendable {
    let handle: OpaquePointer
    public let path: String
    /// Readers hold it shared; a map resize holds it exclusively, because
    /// `mdb_env_set_mapsize` must not run while any transaction of this process is open.
    private var resizeLock = pthread_rwlock_t()
    private let dbis = Mutex<[String: MDB_dbi]>([:])
    /// Held while databases are opened.
    private let opening = Mutex<Void>(())

    /// Reader slots left by processes that died, cleared when this environment was opened.
    public private(set) var staleReadersCleared: Int32 = 0

    public init(path: String, options: EnvironmentOptions = EnvironmentOptions()) throws {
        self.path = path
        var env: OpaquePointer?
        try check(mdb_env_create(&env), "env_create")
        guard let env else { throw LMDBError(code: EINVAL, operation: "env_create") }
        handle = env
        pthread_rwlock_init(&resizeLock, nil)
        // From here the object is fully initialised: a throw runs deinit, which closes the env.
        do {
            try check(mdb_env_set_maxdbs(env, options.maxDatabases), "env_set_maxdbs")
            try check(mdb_env_set_maxreaders(env, options.maxReaders), "env_set_maxreaders")
            try check(mdb_env_set_mapsize(env, options.mapSize), "env_set_mapsize")
            var flags = UInt32(MDB_NOTLS) | UInt32(MDB_NORDAHEAD)
            if options.durability == .nometasync { flags |= UInt32(MDB_NOMETASYNC) }
            // data.mdb and lock.mdb are created 0600: the log holds every user's pushkeys.
            try check(mdb_env_open(env, path, flags, 0o600), "env_open \(path)")
            // A larger map recorded by another process wins over our initial size.
            var info = MDB_envinfo()
            mdb_env_info(env, &info)
            if info.me_mapsize < options.mapSize {
                try check(mdb_env_set_mapsize(env, options.mapSize), "env_set_mapsize")
            }
            var dead: Int32 = 0
            try check(mdb_reader_check(env, &dead), "reader_check")
            staleReadersCleared = dead
        }
    }

    deinit {
        mdb_env_close(handle)
        pthread_rwlock_destroy(&resizeLock)
    }

    /// Opens (creating it when `create`) a named database. Handles are cached and live as long as
    /// the environment.
    public func database(_ name: String, create: Bool = true, integerKeys: Bool = false) throws -> Database {
        try databases([name], create: create, integerKeys: integerKeys)[0]
    }

    /// Opens named databases, in the order given, in as few transactions as it can.
    ///
    /// Those that exist are opened in one read transaction, committed so that their handles join
    /// the environment: no write transaction, so a process that only reads never takes LMDB's
    /// writer lock, and never waits behind another process's long write just to open the store.
    /// Those missing are created (`create`) in one write transaction, or are an error
    /// (`MDB_NOTFOUND`).
    public func databases(_ names: [String], create: Bool = true, integerKeys: Bool = false) throws -> [Database] {
        var flags: UInt32 = integerKeys ? UInt32(MDB_INTEGERKEY) : 0
        // mdb_dbi_open must not run in two transactions of a process at once.
        return try opening.withLock { _ in
            let uncached = dbis.withLock { cached in names.filter { cached[$0] == nil } }
            let missing = try openExisting(uncached, flags: flags)
            if !missing.isEmpty {
                guard create else { throw LMDBError(code: MDB_NOTFOUND, operation: "dbi_open", database: missing[0]) }
                flags |= UInt32(MDB_CREATE)
                let opened: [(String, MDB_dbi)] = try write { txn in
                    try missing.map { name in
                        var dbi = MDB_dbi()
                        try check(clmdb_dbi_open(txn.handle, name, flags, &dbi), "dbi_open", name)
                        return (name, dbi)
                    }
                }
                dbis.withLock { for (name, dbi) in opened { $0[name] = dbi } }
            }
            return try dbis.withLock { cached in
                try names.map { name in
                    guard let dbi = cached[name] else { throw LMDBError(code: MDB_NOTFOUND, operation: "dbi_open", database: name) }
                    return Database(dbi: dbi, name: name)
                }
            }
        }
    }

    /// Opens the databases of `names` that exist, in a read transaction that it commits; returns
    /// the names that do not exist.
    private func openExisting(_ names: [String], flags: UInt32) throws -> [String] {
        guard !names.isEmpty else { return [] }
        var txn: OpaquePointer?
        var rc: Int32
        while true {
            pthread_rwlock_rdlock(&resizeLock)
            rc = mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &txn)
            guard rc == MDB_MAP_RESIZED else { break }
            pthread_rwlock_unlock(&resizeLock)
            try adoptMapSize()
        }
        defer { pthread_rwlock_unlock(&resizeLock) }
        try check(rc, "txn_begin (read)")
        var opened: [(String, MDB_dbi)] = []
        var missing: [String] = []
        for name in names {
            var dbi = MDB_dbi()
            rc = clmdb_dbi_open(txn, name, flags, &dbi)
            if rc == MDB_NOTFOUND {
                missing.append(name)
            } else if rc != 0 {
                mdb_txn_abort(txn)
                throw LMDBError(code: rc, operation: "dbi_open", database: name)
            } else {
                opened.append((name, dbi))
            }
        }
        // A read transaction's commit publishes the handles it opened, as a write's would.
        try check(mdb_txn_commit(txn), "txn_commit (read)")
        dbis.withLock { for (name, dbi) in opened { $0[name] = dbi } }
        return missing
    }

    /// Runs `body` in a read-only transaction. Keys and values seen inside are valid only inside.
    public func read<T>(_ body: (Transaction) throws -> T) throws -> T {
        while true {
            pthread_rwlock_rdlock(&resizeLock)
            var txn: OpaquePointer?
            let rc = mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &txn)
            if rc == MDB_MAP_RESIZED {
                pthread_rwlock_unlock(&resizeLock)
                try adoptMapSize()
                continue
            }
            defer { pthread_rwlock_unlock(&resizeLock) }
            try check(rc, "txn_begin (read)")
            let t = Transaction(handle: txn!, readOnly: true)
            defer { mdb_txn_abort(txn) }
            return try body(t)
        }
    }

    /// Runs `body` in a write transaction and commits it; a throw aborts it.
    ///
    /// When the map is full the transaction is aborted, the map grows and `body` runs again from
    /// the start, so `body` must do all its work through `txn` (no side effects it cannot repeat).
    public func write<T>(_ body: (Transaction) throws -> T) throws -> T {
        while true {
            pthread_rwlock_rdlock(&resizeLock)
            var txn: OpaquePointer?
            let rc = mdb_txn_begin(handle, nil, 0, &txn)
            if rc == MDB_MAP_RESIZED {
                pthread_rwlock_unlock(&resizeLock)
                try adoptMapSize()
                continue
            }
            guard rc == 0, let txn else {
                pthread_rwlock_unlock(&resizeLock)
                throw LMDBError(code: rc, operation: "txn_begin (write)")
            }
            let t = Transaction(handle: txn, readOnly: false)
            let result: T
            do {
                result = try body(t)
                t.finished = true  // mdb_txn_commit frees the transaction even when it fails
                try check(mdb_txn_commit(txn), "txn_commit")
                pthread_rwlock_unlock(&resizeLock)
                return result
            } catch let error as LMDBError where error.isMapFull {
                if !t.finished { mdb_txn_abort(txn) }
                pthread_rwlock_unlock(&resizeLock)
                try grow()
            } catch {
                if !t.finished { mdb_txn_abort(txn) }
                pthread_rwlock_unlock(&resizeLock)
                throw error
            }
        }
    }

    /// Grows the map: doubles it up to 4 GiB, then adds 4 GiB at a time.
    public func grow() throws {
        pthread_rwlock_wrlock(&resizeLock)
        defer { pthread_rwlock_unlock(&resizeLock) }
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        let current = info.me_mapsize
        let next = current < (4 << 30) ? current * 2 : current + (4 << 30)
        try check(mdb_env_set_mapsize(handle, next), "env_set_mapsize \(next)")
    }

    private func adoptMapSize() throws {
        pthread_rwlock_wrlock(&resizeLock)
        defer { pthread_rwlock_unlock(&resizeLock) }
        try check(mdb_env_set_mapsize(handle, 0), "env_set_mapsize (adopt)")
    }

    /// Flushes buffers to disk; with `nometasync` this makes the last commit durable.
    public func sync(force: Bool = true) throws {
        try check(mdb_env_sync(handle, force ? 1 : 0), "env_sync")
    }

    /// Clears reader slots of dead processes and returns how many it cleared.
    @discardableResult
    public func clearStaleReaders() throws -> Int32 {
        var dead: Int32 = 0
        try check(mdb_reader_check(handle, &dead), "reader_check")
        return dead
    }

    public struct Info: Sendable {
        public var mapSize: Int
        public var usedBytes: Int
        public var pageSize: Int
        public var readersInUse: Int
        public var maxReaders: Int
    }

    public var info: Info {
        var info = MDB_envinfo()
        var stat = MDB_stat()
        mdb_env_info(handle, &info)
        mdb_env_stat(handle, &stat)
        let psize = Int(stat.ms_psize)
        return Info(mapSize: info.me_mapsize, usedBytes: (info.me_last_pgno + 1) * psize,
                    pageSize: psize, readersInUse: Int(info.me_numreaders), maxReaders: Int(info.me_maxreaders))
    }

    /// Copies the environment to `path` (a directory), omitting free pages.
    public func copyCompacted(to path: String) throws {
        try check(mdb_env_copy2(handle, path, UInt32(MDB_CP_COMPACT)), "env_copy2 \(path)")
    }

    /// Copies the environment, omitting free pages, into the open file `fd` (which the caller
    /// created with the mode it wants; `mdb_env_copy2` would create its file 0666 less umask),
    /// and syncs it.
    public func copyCompacted(toFile fd: Int32, path: String) throws {
        try check(mdb_env_copyfd2(handle, fd, UInt32(MDB_CP_COMPACT)), "env_copyfd2 \(path)")
        guard fsync(fd) == 0 else { throw LMDBError(code: errno, operation: "fsync \(path)") }
    }
}

/// A named database inside an environment. A plain handle: cheap to copy, valid while the
/// environment is open.
public struct Database: Sendable, Hashable {
    let dbi: MDB_dbi
    public let name: String
}

/// Thread naming for the threads that own an environment's writes.
public enum LMDBThread {
    /// Names the calling thread (at most 15 bytes are kept).
    public static func name(_ name: String) {
        clmdb_name_thread(String(decoding: name.utf8.prefix(15), as: UTF8.self))
    }
}
