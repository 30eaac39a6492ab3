import Synchronization

extension Mutex where Value == Void {
    /// Runs `body` holding the lock, for a class whose fields the lock guards (``PusherPool``,
    /// whose state is spread over files and extensions) rather than a value inside it. Prefer
    /// a `Mutex` that holds the state itself where the state fits one place.
    borrowing func withLock<R>(_ body: () -> R) -> R {
        var result: R?
        withLock { (_: inout Void) -> Void in result = body() }
        return result!
    }
}
