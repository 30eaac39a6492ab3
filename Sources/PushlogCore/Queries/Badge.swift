import LMDB

public enum BadgeRule: Sendable {
    /// The number of rooms with unread notifications (the default).
    case rooms
    /// The number of unread notifications.
    case notifications
}

extension StoreReadView {
    /// The badge: rooms with unread notifications, or unread notifications, for `user`.
    public func badge(user: String, rule: BadgeRule = .rooms) throws -> Int {
        var total = 0
        try txn.forEach(store.projections.unread, prefix: Keys.userPrefix(user)) { _, v in
            let u = try UnreadValue.decode(v)
            total += rule == .rooms ? 1 : Int(u.count)
            return true
        }
        return total
    }
}
