import LMDB

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
    public func append(_ entries: [LogEntry], now: Int64 = SystemClock.nowMS()) throws -> AppendResult {
        try store.append(entries, now: now, in: txn)
    }

    /// Runs `body` in a child transaction, so its writes land together or not at all. A storage
    /// error (LMDB's: a full map, say) is thrown, failing the whole job, so that the writer grows
    /// the map and runs the job again; any other error undoes `body`'s writes only and is
    /// returned, and the rest of the job goes on.
    ///
    /// `writesOnce`: `body` writes at most one record, and last (so an error before it has
    /// written nothing, and the write itself is all or nothing, or an LMDB error). Then no child
    /// transaction is begun: each costs LMDB a fresh 2 MB dirty-page list, which is most of a
    /// cursor advance's cost.
    public func allOrNothing(writesOnce: Bool = false, _ body: (StoreWriteContext) throws -> Void) throws -> (any Error)? {
        do {
            if writesOnce {
                try body(self)
            } else {
                try txn.nested { try body(StoreWriteContext(store: store, txn: $0)) }
            }
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
}
