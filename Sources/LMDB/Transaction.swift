import CLMDB

/// A transaction, valid only inside the `read { }` or `write { }` closure that received it.
/// Do not store it, and do not use keys or values it returned after the closure ends.
public final class Transaction {
    let handle: OpaquePointer
    public let isReadOnly: Bool
    var finished = false

    init(handle: OpaquePointer, readOnly: Bool) {
        self.handle = handle
        self.isReadOnly = readOnly
    }

    /// The value stored under `key`, or nil; the buffer is valid until the next write or the end
    /// of the transaction.
    public func get(_ db: Database, _ key: some RawBytes) throws -> UnsafeRawBufferPointer? {
        try key.withUnsafeBytes { k in
            var mk = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            var mv = MDB_val()
            let rc = mdb_get(handle, db.dbi, &mk, &mv)
            if rc == MDB_NOTFOUND { return nil }
            try check(rc, "get", db.name)
            return UnsafeRawBufferPointer(start: mv.mv_data, count: mv.mv_size)
        }
    }

    /// A copy of the value stored under `key`, or nil.
    public func getBytes(_ db: Database, _ key: some RawBytes) throws -> [UInt8]? {
        try get(db, key).map { Array($0) }
    }

    public struct PutFlags: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// The key sorts after every key in the database (the log); LMDB skips the search.
        public static let append = PutFlags(rawValue: UInt32(MDB_APPEND))
        public static let noOverwrite = PutFlags(rawValue: UInt32(MDB_NOOVERWRITE))
    }

    public func put(_ db: Database, _ key: some RawBytes, _ value: some RawBytes, flags: PutFlags = []) throws {
        try key.withUnsafeBytes { k in
            try value.withUnsafeBytes { v in
                var mk = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
                var mv = MDB_val(mv_size: v.count, mv_data: UnsafeMutableRawPointer(mutating: v.baseAddress))
                try check(mdb_put(handle, db.dbi, &mk, &mv, flags.rawValue), "put", db.name)
            }
        }
    }

    /// Puts `key` only if it is not there yet; returns false (and changes nothing) when it is.
    /// One search, where a `get` then a `put` make two.
    public func insert(_ db: Database, _ key: some RawBytes, _ value: some RawBytes) throws -> Bool {
        try key.withUnsafeBytes { k in
            try value.withUnsafeBytes { v in
                var mk = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
                var mv = MDB_val(mv_size: v.count, mv_data: UnsafeMutableRawPointer(mutating: v.baseAddress))
                let rc = mdb_put(handle, db.dbi, &mk, &mv, UInt32(MDB_NOOVERWRITE))
                if rc == MDB_KEYEXIST { return false }
                try check(rc, "put", db.name)
                return true
            }
        }
    }

    /// Deletes `key`; returns false when it was not there.
    @discardableResult
    public func delete(_ db: Database, _ key: some RawBytes) throws -> Bool {
        try key.withUnsafeBytes { k in
            var mk = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            let rc = mdb_del(handle, db.dbi, &mk, nil)
            if rc == MDB_NOTFOUND { return false }
            try check(rc, "del", db.name)
            return true
        }
    }

    /// Removes every key of `db` (the database itself stays).
    public func clear(_ db: Database) throws {
        try check(mdb_drop(handle, db.dbi, 0), "drop", db.name)
    }

    /// Number of entries in `db`.
    public func count(_ db: Database) throws -> Int {
        var stat = MDB_stat()
        try check(mdb_stat(handle, db.dbi, &stat), "stat", db.name)
        return stat.ms_entries
    }

    /// Runs `body` in a child transaction: a throw undoes only the child's writes.
    public func nested<T>(_ body: (Transaction) throws -> T) throws -> T {
        precondition(!isReadOnly, "nested transactions are for writes")
        var child: OpaquePointer?
        try check(mdb_txn_begin(mdb_txn_env(handle), handle, 0, &child), "txn_begin (nested)")
        let t = Transaction(handle: child!, readOnly: false)
        do {
            let r = try body(t)
            t.finished = true
            try check(mdb_txn_commit(child), "txn_commit (nested)")
            return r
        } catch {
            if !t.finished { mdb_txn_abort(child) }
            throw error
        }
    }

    /// Opens a cursor on `db`, closed when `body` returns.
    public func withCursor<T>(_ db: Database, _ body: (Cursor) throws -> T) throws -> T {
        var c: OpaquePointer?
        try check(mdb_cursor_open(handle, db.dbi, &c), "cursor_open", db.name)
        defer { mdb_cursor_close(c) }
        return try body(Cursor(handle: c!, db: db))
    }

    /// Calls `body` for each entry with `key >= start` (all entries when nil), in key order,
    /// until it returns false.
    public func forEach(_ db: Database, from start: [UInt8]? = nil,
                        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        try withCursor(db) { c in
            // LMDB refuses an empty key for SET_RANGE: an empty start means the first entry.
            var entry = try start.flatMap { $0.isEmpty ? nil : $0 }.map { try c.seek($0) } ?? c.first()
            while let (k, v) = entry {
                if try !body(k, v) { return }
                entry = try c.next()
            }
        }
    }

    /// Calls `body` for each entry whose key starts with `prefix`, in key order, until it returns false.
    public func forEach(_ db: Database, prefix: [UInt8],
                        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        try forEach(db, from: prefix) { k, v in
            guard k.starts(with: prefix) else { return false }
            return try body(k, v)
        }
    }
}

/// A cursor over one database, valid inside `withCursor { }`.
public struct Cursor {
    let handle: OpaquePointer
    let db: Database

    public typealias Entry = (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)

    @inline(__always)
    func op(_ op: MDB_cursor_op, key: UnsafeRawBufferPointer? = nil) throws -> Entry? {
        var mk = MDB_val(mv_size: key?.count ?? 0, mv_data: UnsafeMutableRawPointer(mutating: key?.baseAddress))
        var mv = MDB_val()
        let rc = mdb_cursor_get(handle, &mk, &mv, op)
        if rc == MDB_NOTFOUND { return nil }
        try check(rc, "cursor_get", db.name)
        return (UnsafeRawBufferPointer(start: mk.mv_data, count: mk.mv_size),
                UnsafeRawBufferPointer(start: mv.mv_data, count: mv.mv_size))
    }

    public func first() throws -> Entry? { try op(MDB_FIRST) }
    public func last() throws -> Entry? { try op(MDB_LAST) }
    public func next() throws -> Entry? { try op(MDB_NEXT) }
    public func prev() throws -> Entry? { try op(MDB_PREV) }
    public func current() throws -> Entry? { try op(MDB_GET_CURRENT) }

    /// Positions at the first key `>= key` (`MDB_SET_RANGE`).
    public func seek(_ key: some RawBytes) throws -> Entry? {
        try key.withUnsafeBytes { try op(MDB_SET_RANGE, key: $0) }
    }

    /// Positions at exactly `key` (`MDB_SET_KEY`).
    public func find(_ key: some RawBytes) throws -> Entry? {
        try key.withUnsafeBytes { try op(MDB_SET_KEY, key: $0) }
    }

    /// Writes through the cursor (for `MDB_APPEND` runs of the log).
    public func put(_ key: some RawBytes, _ value: some RawBytes, flags: Transaction.PutFlags = []) throws {
        try key.withUnsafeBytes { k in
            try value.withUnsafeBytes { v in
                var mk = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
                var mv = MDB_val(mv_size: v.count, mv_data: UnsafeMutableRawPointer(mutating: v.baseAddress))
                try check(mdb_cursor_put(handle, &mk, &mv, flags.rawValue), "cursor_put", db.name)
            }
        }
    }

    /// Deletes the entry under the cursor.
    public func deleteCurrent() throws {
        try check(mdb_cursor_del(handle, 0), "cursor_del", db.name)
    }
}
