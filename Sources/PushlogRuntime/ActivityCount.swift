import Synchronization

/// A count of work under way (runs, loops), and the waiters for the moment it is zero: the one
/// idle-waiter pattern of the delivery engine and the email loops.
final class ActivityCount: Sendable {
    private struct State {
        var count = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    var value: Int { state.withLock { $0.count } }

    func add(_ n: Int = 1) {
        state.withLock { $0.count += n }
    }

    /// Lowers the count; at zero, the waiters are resumed (their tasks are scheduled, not run
    /// here, so this may be called under another lock).
    func subtract(_ n: Int = 1) {
        let waiters: [CheckedContinuation<Void, Never>] = state.withLock { s in
            s.count -= n
            guard s.count == 0 else { return [] }
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }

    /// Returns once the count is zero (at once if it is).
    func waitUntilZero() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let zero: Bool = state.withLock { s in
                if s.count == 0 { return true }
                s.waiters.append(c)
                return false
            }
            if zero { c.resume() }
        }
    }
}
