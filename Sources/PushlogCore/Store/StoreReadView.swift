import LMDB

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
