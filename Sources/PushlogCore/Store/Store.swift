import Foundation
import LMDB

public struct StoreOptions: Sendable {
    public var durability: Durability = .sync
    /// The initial map size; the map grows on demand whatever this says.
    public var mapSize: Int = 256 << 20
    /// How long lazy writes (cursor advances after pushes, see ``Store/writeDeferred(lazy:_:onCommit:)``)
    /// may wait to share a commit with others.
    public var lazyCommitDelay: Duration = .milliseconds(10)
    /// False for read-only commands: a missing store is ``DataDir/NoStore`` and nothing is created.
    public var createIfMissing = true
    public init(durability: Durability = .sync, mapSize: Int = 256 << 20, lazyCommitDelay: Duration = .milliseconds(10),
                createIfMissing: Bool = true) {
        self.durability = durability
        self.mapSize = mapSize
        self.lazyCommitDelay = lazyCommitDelay
        self.createIfMissing = createIfMissing
    }
}

/// The Pushlog store: the log, its projections and the consumer state, in one LMDB environment
/// in the data directory.
///
/// Writes go through one writer thread that group-commits; reads run anywhere in short
/// read transactions. Open one `Store` per data directory per process.
public final class Store: Sendable {
    public let dataDir: String
    public let env: Environment
    let log: Database
    let meta: Database
    let projections: Projections
    let consumers: Database
    let throttles: Database
    let deadLetters: Database
    /// Entries moved out of the log by `compact` that are still in force (pusher sets, latest
    /// receipts); a rebuild replays them before the log.
    let checkpoint: Database
    /// `user` → the pos of the user's head when `compact` dropped that notification: heads
    /// survive compaction, and a rebuild starts each user's head from here.
    let compactedHeads: Database
    /// Followed sources: each stream's position (`SourceState.swift`), and what was taken from
    /// its trailing window, so a late row is appended once.
    let sourceState: Database
    let sourceSeen: Database
    let writer: StoreWriter
    /// Change counters of the `unread` projection, for badge caches.
    public let unreadGenerations: UnreadGenerations
    /// What this process appended, for the server's log follower.
    public let ownAppends = OwnAppends()

    public init(dataDir: String, options: StoreOptions = StoreOptions()) throws {
        self.dataDir = dataDir
        if options.createIfMissing {
            try DataDir.create(dataDir)
        } else if !DataDir.hasStore(dataDir) {
            throw DataDir.NoStore(path: dataDir)
        }
        var envOptions = EnvironmentOptions()
        envOptions.durability = options.durability
        envOptions.mapSize = options.mapSize
        env = try withExtendedLifetime(DataDirLock.opening(dataDir: dataDir)) {
            try Environment(path: dataDir, options: envOptions)
        }
        DataDir.secureStoreFiles(in: dataDir)
        // One transaction for all of them (a read transaction when they exist).
        let dbs = try env.databases(["log", "meta", "notifs", "heads", "receipts", "unread", "pushers", "pusher_keys",
                                     "consumers", "throttles", "dead_letters", "checkpoint", "compacted_heads",
                                     "source_state", "source_seen"])
        log = dbs[0]
        meta = dbs[1]
        projections = Projections(notifs: dbs[2], heads: dbs[3], receipts: dbs[4], unread: dbs[5], pushers: dbs[6],
                                  pusherKeys: dbs[7])
        consumers = dbs[8]
        throttles = dbs[9]
        deadLetters = dbs[10]
        checkpoint = dbs[11]
        compactedHeads = dbs[12]
        sourceState = dbs[13]
        sourceSeen = dbs[14]
        let generations = UnreadGenerations()
        unreadGenerations = generations
        writer = StoreWriter(env: env, lazyDelay: options.lazyCommitDelay, own: ownAppends,
                             afterTransaction: generations.transactionEnded)
    }

    deinit { writer.stop() }

    /// Stops the writer thread after the writes already queued. The store is unusable after.
    public func close() { writer.stop() }

    /// Reader slots of dead processes cleared when the store was opened.
    public var staleReadersCleared: Int32 { env.staleReadersCleared }

    // MARK: meta

    enum MetaKey: String {
        case head, first, lastTS = "last_ts", rebuilding
    }

    func metaUInt(_ txn: Transaction, _ key: MetaKey) throws -> UInt64? {
        try txn.get(meta, Array(key.rawValue.utf8)).map { BigEndianRead.uint64($0, at: 0) }
    }

    func setMeta(_ txn: Transaction, _ key: MetaKey, _ value: UInt64) throws {
        try txn.put(meta, Array(key.rawValue.utf8), BigEndian.bytes(value))
    }

    // MARK: appending

    /// Appends entries and updates the projections in the same transaction; returns once the
    /// commit is durable. All or nothing.
    @discardableResult
    public func append(_ entries: [LogEntry], now: Int64 = SystemClock.nowMS()) throws -> AppendResult {
        try writer.write { [self] txn in try self.append(entries, now: now, in: txn) }
    }

    /// `append` for async callers: the calling task waits, no thread blocks.
    @discardableResult
    public func appendAsync(_ entries: [LogEntry], now: Int64 = SystemClock.nowMS()) async throws -> AppendResult {
        try await writer.write { [self] txn in try self.append(entries, now: now, in: txn) }
    }

    func append(_ entries: [LogEntry], now: Int64, in txn: Transaction) throws -> AppendResult {
        precondition(!entries.isEmpty, "append of nothing")
        let head = try metaUInt(txn, .head) ?? 0
        // Append times never go backwards, so time → pos is a binary search over the log.
        let ts = max(now, Int64(bitPattern: try metaUInt(txn, .lastTS) ?? 0))
        var result = AppendResult(firstPos: head + 1, lastPos: head + UInt64(entries.count))
        var projector = Projector(txn: txn, projections: projections, consumers: consumers,
                                  throttles: throttles, deadLetters: deadLetters, generations: unreadGenerations)
        try txn.withCursor(log) { cursor in
            var pos = head
            var memo = EntryCodec.EncodeMemo()
            for entry in entries {
                pos += 1
                try cursor.put(Keys.pos(pos), EntryCodec.encode(entry, ts: ts, memo: &memo), flags: .append)
                try projector.apply(entry, pos: pos, result: &result)
            }
        }
        try projector.flush()
        ownAppends.stage(result.firstPos...result.lastPos)
        try setMeta(txn, .head, result.lastPos)
        try setMeta(txn, .lastTS, UInt64(bitPattern: ts))
        return result
    }

    /// Runs `body` in the writer's next group commit. For consumer-state updates (cursor
    /// advances, backoff) by the pushers and the tools.
    public func write<T>(_ body: @escaping (StoreWriteContext) throws -> T) throws -> T {
        try writer.write { [self] txn in try body(StoreWriteContext(store: self, txn: txn)) }
    }

    public func writeAsync<T: Sendable>(_ body: @escaping @Sendable (StoreWriteContext) throws -> T) async throws -> T {
        try await writer.write { [self] txn in try body(StoreWriteContext(store: self, txn: txn)) }
    }

    // MARK: writing and reading

    /// Queues `body` for the writer's next group commit and returns at once; `ticket.wait()`
    /// returns when it is committed. Writes queued by one caller commit in the order queued.
    public func writeDeferred(_ body: @escaping @Sendable (StoreWriteContext) throws -> Void) -> WriteTicket {
        let ticket = WriteTicket()
        writer.enqueue(StoreWriter.Job(body: { [self] txn in try body(StoreWriteContext(store: self, txn: txn)) },
                                       done: { ticket.complete($0.map { _ in () }) }))
        return ticket
    }

    /// Queues `body` for the writer's next group commit and returns at once; `onCommit` runs on
    /// the writer thread once it is committed (or failed). Writes queued by one caller commit in
    /// the order queued.
    ///
    /// `lazy`: the write may wait up to ``StoreOptions/lazyCommitDelay`` for others to share
    /// its commit (and fsync), unless a write that is not lazy comes first. For writes whose loss
    /// in a crash only repeats work, such as cursor advances after pushes.
    public func writeDeferred(lazy: Bool = false, _ body: @escaping @Sendable (StoreWriteContext) throws -> Void,
                              onCommit: @escaping @Sendable (Result<Void, Error>) -> Void) {
        writer.enqueue(StoreWriter.Job(body: { [self] txn in try body(StoreWriteContext(store: self, txn: txn)) },
                                       lazy: lazy, done: { onCommit($0.map { _ in () }) }))
    }

    /// Runs `body` in one read transaction: several queries see the same snapshot and share the
    /// transaction's cost. The view is valid only inside `body`.
    @discardableResult
    public func read<T>(_ body: (StoreReadView) throws -> T) throws -> T {
        try env.read { txn in try body(StoreReadView(store: self, txn: txn)) }
    }
}
