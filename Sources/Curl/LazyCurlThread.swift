import Synchronization

/// A ``CurlThread`` started on first use, for work that many clients never have (SMTP).
///
/// Once shut down it stays down: ``get()`` then throws ``HTTPError/Kind/shutdown`` instead of
/// starting a new thread behind a client that was stopped.
final class LazyCurlThread: Sendable {
    private enum State: Sendable {
        case notStarted
        case running(CurlThread)
        case shutDown
    }

    private let state = Mutex(State.notStarted)
    private let configuration: CurlConfiguration

    private let name: String

    init(configuration: CurlConfiguration, name: String) {
        self.configuration = configuration
        self.name = name
    }

    /// The thread, started now if this is the first call.
    /// - Throws: ``HTTPError`` when it cannot be started, or after ``shutdown()``.
    func get() throws(HTTPError) -> CurlThread {
        try state.withLock { state throws(HTTPError) -> CurlThread in
            switch state {
            case .running(let thread):
                return thread
            case .shutDown:
                throw HTTPError.shutDown
            case .notStarted:
                let thread = try CurlThread(configuration: configuration, name: name)
                state = .running(thread)
                return thread
            }
        }
    }

    /// Stops the thread if it was started (see ``CurlThread/shutdown()``); later ``get()``
    /// calls throw.
    func shutdown() {
        let thread: CurlThread? = state.withLock { state in
            defer { state = .shutDown }
            if case .running(let thread) = state { return thread }
            return nil
        }
        thread?.shutdown()
    }
}
