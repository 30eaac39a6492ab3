import Metrics
import PushlogCore

/// Notices entries appended to the log by other processes (`pushlog append`, a follower of a
/// homeserver's database) and pokes the pool with what they concern. It polls the store's head,
/// a single cheap read, every `interval`: LMDB has no change feed across processes.
///
/// What this process appended itself (through the API) is skipped, unread: whoever appended it
/// has poked the pool already, so every append is signalled once. Receipts go to the pool as
/// the API's do: the engine alone decides whether a badge changed.
public enum LogFollower {
    @discardableResult
    public static func start(store: Store, pool: PusherPool, processes: BackgroundProcesses,
                             interval: Duration = .milliseconds(50)) throws -> Task<Void, Never> {
        // Recording starts before the head is read: every own append after it is known.
        store.ownAppends.start()
        let start = try store.read { view in try view.head() }
        let headGauge = Gauge(label: "pushlog_log_head")
        headGauge.record(start)
        return processes.run("follow_log") { ctx in
            var seen = start
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                let head = try store.read { view in try view.head() }
                guard head > seen else { continue }
                let others = store.ownAppends.othersIn(from: seen + 1, to: head)
                var notified = Set<String>(), receipts = Set<String>(), pushers = Set<PusherID>()
                if !others.isEmpty {
                    try ctx.transaction {
                        for range in others {
                            try store.read { view in try view.forEachEntry(from: range.lowerBound, to: range.upperBound) { e in
                                switch e.entry {
                                case .notification(let n) where n.notifies: notified.insert(n.userID)
                                case .notification: break
                                case .receipt(let r): receipts.insert(r.userID)
                                case .pusherSet(let c): pushers.insert(c.id)
                                case .pusherRemoved(let id): pushers.insert(id)
                                }
                                return true
                            } }
                        }
                    }
                }
                seen = head
                headGauge.record(head)
                if !pushers.isEmpty { pool.onPushersChanged(pushers) }
                if !notified.isEmpty { pool.onNewNotifications(users: notified) }
                if !receipts.isEmpty { pool.onNewReceipts(users: receipts) }
            }
        }
    }
}
