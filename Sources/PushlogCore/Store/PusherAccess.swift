import LMDB

/// Why a notification was not delivered.
public enum DeadLetterReason: UInt8, Sendable, CaseIterable {
    /// The pusher failed continuously for longer than `push.give_up_after`.
    case giveUp = 1
    /// The notification was older than `push.max_age` when its turn came.
    case maxAge = 2

    public var label: String { self == .giveUp ? "give_up" : "max_age" }
}

/// A pusher as its loop sees it.
public struct LoadedPusher: Sendable {
    public var key: [UInt8]
    public var config: PusherConfig
    public var state: ConsumerState
}

extension Store {
    /// The pushers of `user`, with their consumer state.
    public func pushers(ofUser user: String) throws -> [LoadedPusher] {
        try env.read { txn in
            var out: [LoadedPusher] = []
            try txn.forEach(projections.pushers, prefix: Keys.userPrefix(user)) { k, v in
                let config = try PusherRecord.decode(v)
                if let s = try txn.get(consumers, k) {
                    out.append(LoadedPusher(key: Array(k), config: config, state: try ConsumerState.decode(s)))
                }
                return true
            }
            return out
        }
    }

    /// The pusher stored under `key`, or nil when it was removed.
    public func loadPusher(key: [UInt8]) throws -> LoadedPusher? {
        try env.read { txn in try loadPusher(key: key, txn: txn) }
    }

    func loadPusher(key: [UInt8], txn: Transaction) throws -> LoadedPusher? {
        do {
            guard let p = try txn.get(projections.pushers, key), let s = try txn.get(consumers, key) else { return nil }
            return LoadedPusher(key: key, config: try PusherRecord.decode(p), state: try ConsumerState.decode(s))
        }
    }

    /// Dead letters of a pusher: (pos, reason, ts).
    public func deadLetters(key: [UInt8]) throws -> [(pos: UInt64, reason: DeadLetterReason, ts: Int64)] {
        try env.read { txn in
            var out: [(UInt64, DeadLetterReason, Int64)] = []
            try txn.forEach(deadLetters, prefix: key) { k, v in
                guard k.count == key.count + 8, v.count == 9, let r = DeadLetterReason(rawValue: v[0]) else { return true }
                out.append((BigEndianRead.uint64(k, at: key.count), r, Int64(bitPattern: BigEndianRead.uint64(v, at: 1))))
                return true
            }
            return out
        }
    }
}

extension StoreWriteContext {
    /// Runs `body` in a child transaction, so its writes land together or not at all. A storage
    /// error (LMDB's: a full map, say) is thrown, failing the whole job, so that the writer grows
    /// the map and runs the job again; any other error undoes `body`'s writes only and is
    /// returned, and the rest of the job goes on.
    public func allOrNothing(_ body: (StoreWriteContext) throws -> Void) throws -> (any Error)? {
        do {
            try txn.nested { try body(StoreWriteContext(store: store, txn: $0)) }
            return nil
        } catch let error as LMDBError {
            throw error
        } catch {
            return error
        }
    }

    /// Changes a pusher's consumer state; returns nil (and writes nothing) when the pusher is gone.
    @discardableResult
    public func updateConsumer(key: [UInt8], _ change: (inout ConsumerState) -> Void) throws -> ConsumerState? {
        guard let raw = try txn.get(store.consumers, key) else { return nil }
        var state = try ConsumerState.decode(raw)
        change(&state)
        try txn.put(store.consumers, key, state.encoded())
        return state
    }

    public func addDeadLetter(key: [UInt8], pos: UInt64, reason: DeadLetterReason, ts: Int64) throws {
        var v: [UInt8] = [reason.rawValue]
        BigEndian.append(UInt64(bitPattern: ts), to: &v)
        try txn.put(store.deadLetters, key + Keys.pos(pos), v)
    }
}

/// Everything one push needs, read in one transaction.
public struct PushInput: Sendable {
    public var pusher: LoadedPusher
    /// nil when the entry is gone (compacted) or not a notification.
    public var entry: LoggedEntry?
    public var badge: Int
}

extension Store {
    /// The pusher at `key` (nil when removed), the entry at `pos` and the user's badge, in one
    /// read transaction.
    public func pushInput(key: [UInt8], pos: UInt64, rule: BadgeRule) throws -> PushInput? {
        try env.read { txn in try pushInput(key: key, pos: pos, rule: rule, txn: txn) }
    }

    func pushInput(key: [UInt8], pos: UInt64, rule: BadgeRule, txn: Transaction) throws -> PushInput? {
        guard let raw = try StoreReadView(store: self, txn: txn).rawPushInput(key: key, pos: pos) else { return nil }
        let config = try raw.decodePusher()
        return PushInput(pusher: LoadedPusher(key: key, config: config, state: raw.state),
                         entry: try raw.entry.map { try EntryCodec.decode($0, pos: pos) },
                         badge: try badge(user: config.id.userID, rule: rule, txn: txn))
    }

    /// Queues `body` for the writer's next group commit and returns at once; `ticket.wait()`
    /// returns when it is committed. Writes queued by one caller commit in the order queued.
    public func writeDeferred(_ body: @escaping @Sendable (StoreWriteContext) throws -> Void) -> WriteTicket {
        let ticket = WriteTicket()
        writer.enqueue(StoreWriter.Job(body: { [self] txn in try body(StoreWriteContext(store: self, txn: txn)) },
                                       done: { ticket.complete($0.map { _ in () }) }))
        return ticket
    }
}

extension Store {
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
    public func read<T>(_ body: (StoreReadView) throws -> T) throws -> T {
        try env.read { txn in try body(StoreReadView(store: self, txn: txn)) }
    }
}

/// Queries inside one read transaction (see ``Store/read(_:)``).
/// Trap: do not keep it beyond `body`; its transaction is gone.
public struct StoreReadView {
    let store: Store
    let txn: Transaction

    public func loadPusher(key: [UInt8]) throws -> LoadedPusher? { try store.loadPusher(key: key, txn: txn) }

    public func notifications(user: String, after cursor: UInt64, limit: Int) throws -> [UserNotification] {
        var out: [UserNotification] = []
        try store.forEachNotification(user: user, after: cursor, limit: limit, txn: txn) { out.append($0); return true }
        return out
    }

    public func pushInput(key: [UInt8], pos: UInt64, rule: BadgeRule) throws -> PushInput? {
        try store.pushInput(key: key, pos: pos, rule: rule, txn: txn)
    }
}

/// A queued write's commit, to be awaited later.
public final class WriteTicket: @unchecked Sendable {
    private let lock = Mutex()
    private var result: Result<Void, Error>?
    private var waiters: [CheckedContinuation<Void, Error>] = []

    init() {}

    func complete(_ r: Result<Void, Error>) {
        let ws: [CheckedContinuation<Void, Error>] = lock.withLock {
            result = r
            defer { waiters.removeAll() }
            return waiters
        }
        for w in ws { w.resume(with: r) }
    }

    /// Returns once the write is committed; throws what the write threw.
    public func wait() async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
            let done: Result<Void, Error>? = lock.withLock {
                if let result { return result }
                waiters.append(c)
                return nil
            }
            if let done { c.resume(with: done) }
        }
    }
}
