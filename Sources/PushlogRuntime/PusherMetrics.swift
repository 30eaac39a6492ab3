import PushlogCore
import Synchronization

/// `pushlog_pushers{kind}`, `pushlog_pending_pushers` and `pushlog_pusher_lag_entries`, in
/// Prometheus text, computed from the store when `/metrics` is scraped: they follow pusher
/// changes, appends and deliveries by construction, with no counter to keep in step on every
/// write path (a boot snapshot went stale at the first append).
///
/// A census walks every pusher (~60 ns each, ~0.06 s for a million), so it is taken at most once
/// per `maxAge` and one at a time: a flood of scrapes, which need no token unless
/// `metrics.token` is set, costs one walk per `maxAge`, not one per request.
public final class PusherMetrics: Sendable {
    let store: Store
    let maxAge: Double
    private let cached = Mutex<(at: Double, text: [UInt8])?>(nil)
    /// Held while a census is taken, so concurrent scrapes wait for one walk instead of each making one.
    private let walking = Mutex<Void>(())

    /// Upper bounds of the lag histogram's buckets, in log entries.
    public static let lagBuckets: [UInt64] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 100_000, 1_000_000]

    public init(store: Store, maxAge: Double = 1) {
        self.store = store
        self.maxAge = maxAge
    }

    /// The three metrics as Prometheus text; a failed read leaves them out (and says so in a comment).
    public func render() -> [UInt8] {
        walking.withLock { _ in
            let now = SystemClock.monotonicSeconds()
            if let hit = cached.withLock({ $0 }), now - hit.at < maxAge { return hit.text }
            let text: [UInt8]
            do { text = Array(Self.text(try store.read { view in try view.pusherCensus() }).utf8) } catch {
                return Array("# pushlog_pushers: the store could not be read: \(error)\n".utf8)
            }
            cached.withLock { $0 = (now, text) }
            return text
        }
    }

    /// The census as Prometheus text format 0.0.4. The lag histogram describes the pending
    /// pushers now (a snapshot, not a cumulative count): its buckets may go down between scrapes.
    public static func text(_ census: PusherCensus) -> String {
        var out = "# TYPE pushlog_pushers gauge\n"
        for kind in PusherKind.allCases { out += "pushlog_pushers{kind=\"\(kind.rawValue)\"} \(census.byKind[kind] ?? 0)\n" }
        out += "# TYPE pushlog_pending_pushers gauge\npushlog_pending_pushers \(census.pending)\n"
        out += "# TYPE pushlog_pusher_lag_entries histogram\n"
        var counts = [Int](repeating: 0, count: lagBuckets.count)
        var sum: UInt64 = 0
        for lag in census.lags {
            sum &+= lag
            if let i = lagBuckets.firstIndex(where: { lag <= $0 }) { counts[i] += 1 }
        }
        var cumulative = 0
        for (bound, count) in zip(lagBuckets, counts) {
            cumulative += count
            out += "pushlog_pusher_lag_entries_bucket{le=\"\(bound)\"} \(cumulative)\n"
        }
        out += "pushlog_pusher_lag_entries_bucket{le=\"+Inf\"} \(census.pending)\n"
        out += "pushlog_pusher_lag_entries_sum \(sum)\npushlog_pusher_lag_entries_count \(census.pending)\n"
        return out
    }
}
