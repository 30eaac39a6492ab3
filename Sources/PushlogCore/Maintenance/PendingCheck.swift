import LMDB
#if canImport(Glibc)
import Glibc
#endif

/// A pusher with work: its head is past its cursor.
public struct PendingPusher: Sendable, Equatable {
    /// The pusher's store key (user, 0x00, hash); `StoreReadView.pusher(key:)` loads its config.
    public var key: [UInt8]
    public var userID: String
    public var cursor: UInt64
    public var head: UInt64
    public var kind: PusherKind
}

extension StoreReadView {
    /// The boot check: walks `consumers` and `heads` side by side in key order (a merge join: two
    /// sequential cursors, no per-pusher seek) and calls `body` for every enabled pusher whose
    /// user's head is past its cursor, until `body` returns false. `after` resumes after a pusher
    /// key, `limit` caps the rows of this call (``Store/pendingPushers(pageSize:)`` pages through
    /// it, one short transaction a page).
    /// Returns the number of consumers examined.
    @discardableResult
    public func forEachPending(after: [UInt8]? = nil, limit: Int = .max,
                               _ body: (PendingPusher) throws -> Bool) throws -> Int {
        guard limit > 0 else { return 0 }
        var yielded = 0
        return try store.walkConsumersWithHeads(txn, after: after) { ck, cv, userLength, head in
            guard let head, let cursor = ConsumerState.cursorIfEnabled(cv), head > cursor else { return true }
            let p = PendingPusher(key: Array(ck), userID: String(decoding: UnsafeRawBufferPointer(rebasing: ck[..<userLength]), as: UTF8.self),
                                  cursor: cursor, head: head, kind: PusherKind(code: cv[41]) ?? .http)
            yielded += 1
            return try body(p) && yielded < limit
        }
    }

    /// What `/metrics` reports of the pushers, read from one snapshot: how many there are of
    /// each kind (enabled or not), how many enabled ones are pending, and how far behind each
    /// pending one is (log entries between its cursor and its user's head). One merge walk, like
    /// the boot check: ~60 ns a pusher, nothing held per idle pusher.
    public func pusherCensus() throws -> PusherCensus {
        var census = PusherCensus()
        try store.walkConsumersWithHeads(txn, after: nil) { _, cv, _, head in
            guard cv.count >= ConsumerState.minSize, let kind = PusherKind(code: cv[41]) else { return true }
            census.byKind[kind, default: 0] += 1
            if let head, let cursor = ConsumerState.cursorIfEnabled(cv), head > cursor { census.lags.append(head - cursor) }
            return true
        }
        return census
    }
}

extension Store {
    /// The merge join under the boot check and the census: `consumers` and `heads` walked side by
    /// side in key order (both start with the user id), `body` called with each consumer's key,
    /// its value, the length of the user id that starts the key, and that user's head (nil: no
    /// notification yet), until it returns false. Returns the number of consumers examined.
    @discardableResult
    func walkConsumersWithHeads(
        _ txn: Transaction, after: [UInt8]?,
        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer, Int, UInt64?) throws -> Bool
    ) throws -> Int {
        var examined = 0
        try txn.withCursor(consumers) { cc in
            try txn.withCursor(projections.heads) { hc in
                var c = try after.map { k -> Cursor.Entry? in
                    guard let e = try cc.seek(k) else { return nil }
                    return e.key.elementsEqual(k) ? try cc.next() : e
                } ?? cc.first()
                var h = try hc.first()
                while let (ck, cv) = c {
                    examined += 1
                    let userLen = Keys.userLength(ck)
                    let user = UnsafeRawBufferPointer(rebasing: ck[..<userLen])
                    // Advance heads to the first key >= this user.
                    while let (hk, _) = h, compareKeys(hk, user) < 0 { h = try hc.next() }
                    var head: UInt64?
                    if let (hk, hv) = h, hk.count == user.count, compareKeys(hk, user) == 0 { head = BigEndianRead.uint64(hv, at: 0) }
                    if try !body(ck, cv, userLen, head) { return }
                    c = try cc.next()
                }
            }
        }
        return examined
    }

    /// The pending pushers as a sequence that reads them a page at a time, each page in its own
    /// short read transaction, so a million idle pushers never sit in memory and no read
    /// transaction stays open between pages.
    public func pendingPushers(pageSize: Int = 1_000) -> PendingPushers {
        PendingPushers(store: self, pageSize: pageSize)
    }
}

public struct PendingPushers: Sequence {
    let store: Store
    let pageSize: Int

    public struct Iterator: IteratorProtocol {
        let store: Store
        let pageSize: Int
        var page: [PendingPusher] = []
        var index = 0
        var lastKey: [UInt8]?
        var exhausted = false

        public mutating func next() -> PendingPusher? {
            if index == page.count {
                guard !exhausted else { return nil }
                var fresh: [PendingPusher] = []
                fresh.reserveCapacity(pageSize)
                // A failing read ends the sequence; callers that need the error use forEachPending.
                _ = try? store.read { try $0.forEachPending(after: lastKey, limit: pageSize) { fresh.append($0); return true } }
                if fresh.count < pageSize { exhausted = true }
                guard let last = fresh.last else { return nil }
                lastKey = last.key
                page = fresh
                index = 0
            }
            defer { index += 1 }
            return page[index]
        }
    }

    public func makeIterator() -> Iterator { Iterator(store: store, pageSize: pageSize) }
}

/// LMDB's default key order: bytewise over the shorter length, then the shorter key first.
@inline(__always)
func compareKeys(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
    let n = min(a.count, b.count)
    if n > 0 {
        let r = memcmp(a.baseAddress!, b.baseAddress!, n)
        if r != 0 { return Int(r) }
    }
    return a.count - b.count
}

/// The pushers as `/metrics` shows them (``StoreReadView/pusherCensus()``).
public struct PusherCensus: Sendable, Equatable {
    /// Every pusher, enabled or not, by kind.
    public var byKind: [PusherKind: Int] = [:]
    /// One entry per enabled pending pusher: log entries between its cursor and its user's head.
    public var lags: [UInt64] = []
    public var pending: Int { lags.count }

    public init() {}
}
