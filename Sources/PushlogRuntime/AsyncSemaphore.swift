import DequeModule
import Synchronization

/// A counting semaphore for tasks: `acquire` suspends (never blocks a thread) until a permit is
/// free, and gives up with `CancellationError` when its task is cancelled. Permits go to
/// waiters in the order they asked.
final class AsyncSemaphore: Sendable {
    private struct State {
        var free: Int
        var waiters: Deque<(id: UInt64, continuation: CheckedContinuation<Void, Error>)> = []
        var nextID: UInt64 = 0
    }
    private let state: Mutex<State>

    init(permits: Int) { state = Mutex(State(free: permits)) }

    func acquire() async throws {
        let id: UInt64 = state.withLock { $0.nextID += 1; return $0.nextID }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
                let granted: Bool = state.withLock { s in
                    if Task.isCancelled { return false }
                    if s.free > 0 {
                        s.free -= 1
                        return true
                    }
                    s.waiters.append((id, c))
                    return false
                }
                if granted { c.resume() } else if Task.isCancelled { c.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            let c: CheckedContinuation<Void, Error>? = state.withLock { s in
                guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return s.waiters.remove(at: i).continuation
            }
            c?.resume(throwing: CancellationError())
        }
    }

    func release() {
        let next: CheckedContinuation<Void, Error>? = state.withLock { s in
            guard let first = s.waiters.popFirst() else {
                s.free += 1
                return nil
            }
            return first.continuation
        }
        next?.resume()
    }
}
