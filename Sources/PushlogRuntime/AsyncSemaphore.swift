import LMDB

/// A counting semaphore for tasks: `acquire` suspends (never blocks a thread) until a permit is
/// free, and gives up with `CancellationError` when its task is cancelled.
final class AsyncSemaphore: @unchecked Sendable {
    private let lock = Mutex()
    private var free: Int
    private var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, Error>)] = []
    private var nextID: UInt64 = 0

    init(permits: Int) { free = permits }

    func acquire() async throws {
        let id: UInt64 = lock.withLock { nextID += 1; return nextID }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
                let granted: Bool = lock.withLock {
                    if Task.isCancelled { return false }
                    if free > 0 {
                        free -= 1
                        return true
                    }
                    waiters.append((id, c))
                    return false
                }
                if granted { c.resume() } else if Task.isCancelled { c.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            let c: CheckedContinuation<Void, Error>? = lock.withLock {
                guard let i = waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return waiters.remove(at: i).continuation
            }
            c?.resume(throwing: CancellationError())
        }
    }

    func release() {
        let next: CheckedContinuation<Void, Error>? = lock.withLock {
            if waiters.isEmpty {
                free += 1
                return nil
            }
            return waiters.removeFirst().continuation
        }
        next?.resume()
    }
}
