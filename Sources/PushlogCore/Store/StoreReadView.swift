import LMDB

/// One read transaction as the store's callers see it: every query of the store is a method of
/// the view (the files of `Queries/`), and all of them in one `store.read { view in … }` see
/// the same snapshot and share the transaction's cost.
///
/// Trap: do not keep it beyond `body`; its transaction is gone, and the bytes it handed out
/// with it.
public struct StoreReadView {
    let store: Store
    let txn: Transaction

    /// The pos of the newest log entry (0 for an empty log). A single cheap read: this is what a
    /// server polls to notice appends made by another process.
    public func head() throws -> UInt64 { try store.metaUInt(txn, .head) ?? 0 }

    /// The pos of the oldest entry still in the log (1 unless `compact` dropped a prefix).
    public func firstPos() throws -> UInt64 { try store.metaUInt(txn, .first) ?? 1 }
}
