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
        env = try Environment(path: dataDir, options: envOptions)
        DataDir.secureStoreFiles(in: dataDir)
        log = try env.database("log")
        meta = try env.database("meta")
        projections = Projections(
            notifs: try env.database("notifs"), heads: try env.database("heads"),
            receipts: try env.database("receipts"), unread: try env.database("unread"),
            pushers: try env.database("pushers"), pusherKeys: try env.database("pusher_keys"))
        consumers = try env.database("consumers")
        throttles = try env.database("throttles")
        deadLetters = try env.database("dead_letters")
        checkpoint = try env.database("checkpoint")
        compactedHeads = try env.database("compacted_heads")
        sourceState = try env.database("source_state")
        sourceSeen = try env.database("source_seen")
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

    /// The pos of the newest log entry (0 for an empty log). A single cheap read: this is what a
    /// server polls to notice appends made by another process.
    public func head() throws -> UInt64 {
        try env.read { try metaUInt($0, .head) ?? 0 }
    }

    /// The pos of the oldest entry still in the log (1 unless `compact` dropped a prefix).
    public func firstPos() throws -> UInt64 {
        try env.read { try metaUInt($0, .first) ?? 1 }
    }

    // MARK: appending

    /// Appends entries and updates the projections in the same transaction; returns once the
    /// commit is durable. All or nothing.
    @discardableResult
    public func append(_ entries: [LogEntry], now: Int64 = Clock.nowMS()) throws -> AppendResult {
        try writer.write { [self] txn in try self.append(entries, now: now, in: txn) }
    }

    /// `append` for async callers: the calling task waits, no thread blocks.
    @discardableResult
    public func appendAsync(_ entries: [LogEntry], now: Int64 = Clock.nowMS()) async throws -> AppendResult {
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
            for entry in entries {
                pos += 1
                try cursor.put(Keys.pos(pos), EntryCodec.encode(entry, ts: ts), flags: .append)
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

    // MARK: reading the log

    /// Calls `body` for each log entry with `from <= pos <= to`, in order, until it returns false.
    public func forEachEntry(from: UInt64 = 1, to: UInt64 = .max, _ body: (LoggedEntry) throws -> Bool) throws {
        try env.read { txn in
            try txn.forEach(log, from: Keys.pos(from)) { k, v in
                let pos = BigEndianRead.uint64(k, at: 0)
                guard pos <= to else { return false }
                return try body(try EntryCodec.decode(v, pos: pos))
            }
        }
    }

    /// The entry at `pos`, or nil when there is none (beyond the head, or compacted away).
    public func entry(at pos: UInt64) throws -> LoggedEntry? {
        try env.read { txn in try txn.get(log, Keys.pos(pos)).map { try EntryCodec.decode($0, pos: pos) } }
    }

    /// The first pos appended at or after `ts` (ms); head + 1 when there is none.
    public func position(atOrAfter ts: Int64) throws -> UInt64 {
        try env.read { txn in
            let head = try metaUInt(txn, .head) ?? 0
            var lo = try metaUInt(txn, .first) ?? 1, hi = head + 1
            while lo < hi {
                let mid = lo + (hi - lo) / 2
                guard let v = try txn.get(log, Keys.pos(mid)), let t = EntryCodec.timestamp(v) else {
                    throw CorruptData(what: "log", reason: "entry \(mid) missing or unreadable")
                }
                if t < ts { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }
    }
}

/// A write transaction as the store's callers see it: consumer state and dead letters.
public struct StoreWriteContext {
    let store: Store
    public let txn: Transaction

    public func consumerState(_ id: PusherID) throws -> ConsumerState? {
        try txn.get(store.consumers, Keys.pusher(id)).map(ConsumerState.decode)
    }

    public func consumerState(key: [UInt8]) throws -> ConsumerState? {
        try txn.get(store.consumers, key).map(ConsumerState.decode)
    }

    public func setConsumerState(_ id: PusherID, _ state: ConsumerState) throws {
        try txn.put(store.consumers, Keys.pusher(id), state.encoded())
    }

    public func head() throws -> UInt64 { try store.metaUInt(txn, .head) ?? 0 }

    /// Appends `entries` to the log in this transaction, projections included, as
    /// ``Store/append(_:now:)`` does in one of its own.
    @discardableResult
    public func append(_ entries: [LogEntry], now: Int64 = Clock.nowMS()) throws -> AppendResult {
        try store.append(entries, now: now, in: txn)
    }
}

public enum Clock {
    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    public static func nowMS() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
