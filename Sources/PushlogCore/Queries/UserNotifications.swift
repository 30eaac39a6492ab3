import LMDB

/// A pushable notification of one user, as the index knows it.
public struct UserNotification: Sendable, Equatable {
    public var pos: UInt64
    public var roomID: String
    public var streamOrdering: Int64
    public var threadID: String
    public var highlight: Bool
    /// Read under the contract's receipt rules (covered by an unthreaded or same-thread receipt).
    public var isRead: Bool
}

extension StoreReadView {
    /// Calls `body` with each of `user`'s pushable notifications with pos > `cursor`, in log
    /// order, read ones marked, until it returns false or `limit` rows were given.
    public func forEachNotification(user: String, after cursor: UInt64, limit: Int = .max,
                                    _ body: (UserNotification) throws -> Bool) throws {
        try walkNotifications(user: user, after: cursor, limit: limit) { row in
            func string(_ raw: UnsafeRawBufferPointer) throws -> String {
                guard let s = String(validating: raw, as: UTF8.self) else {
                    throw CorruptData(what: "notification index", reason: "invalid UTF-8")
                }
                return s
            }
            return try body(UserNotification(pos: row.pos, roomID: try string(row.room), streamOrdering: row.streamOrdering,
                                             threadID: try string(row.thread), highlight: row.highlight, isRead: row.isRead))
        }
    }

    /// `user`'s pushable notifications with pos > `cursor` (at most `limit`), in log order.
    public func notifications(user: String, after cursor: UInt64, limit: Int = .max) throws -> [UserNotification] {
        var out: [UserNotification] = []
        try forEachNotification(user: user, after: cursor, limit: limit) { out.append($0); return true }
        return out
    }
}
