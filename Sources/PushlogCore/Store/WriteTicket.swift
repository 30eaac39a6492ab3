import Synchronization

/// A queued write's commit, to be awaited later.
public final class WriteTicket: Sendable {
    private struct State {
        var result: Result<Void, Error>?
        var waiters: [CheckedContinuation<Void, Error>] = []
    }
    private let state = Mutex(State())

    init() {}

    func complete(_ r: Result<Void, Error>) {
        let ws: [CheckedContinuation<Void, Error>] = state.withLock { s in
            s.result = r
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        for w in ws { w.resume(with: r) }
    }

    /// Returns once the write is committed; throws what the write threw.
    public func wait() async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
            let done: Result<Void, Error>? = state.withLock { s in
                if let result = s.result { return result }
                s.waiters.append(c)
                return nil
            }
            if let done { c.resume(with: done) }
        }
    }
}
