import CCurl
import Glibc
import Synchronization

/// The one OS thread that owns a client's curl multi handle, and the queue that feeds it.
///
/// Why a dedicated pthread rather than a Task or a DispatchQueue: libcurl handles must never be
/// used from two threads, and `curl_multi_poll` blocks. A blocked task would hold one of the
/// few cooperative-pool threads (two on a two-core machine) for the client's whole life.
///
/// Other threads talk to it only through ``inbox`` (a mutex-protected command queue) followed,
/// when the thread is (about to be) asleep in `curl_multi_poll`, by `curl_multi_wakeup`,
/// libcurl's one call documented as safe from any thread. The loop: take all the commands in
/// one lock hold, `curl_multi_perform`, complete what `curl_multi_info_read` reports done, then
/// `curl_multi_poll` until there is I/O, a curl timer, or a wakeup; unless commands arrived
/// meanwhile, in which case it goes round again without sleeping.
///
/// Why the ``Inbox/sleeping`` flag is enough: the thread sets it, under the lock, only after
/// seeing the queue empty, and clears it when it next takes the queue. A poster that finds it
/// set wakes the thread (once: it clears the flag); one that finds it clear knows the thread
/// will look at the queue before it sleeps. A wakeup sent just before `curl_multi_poll` starts
/// is not lost: it leaves the wakeup pipe readable, so the poll returns at once.
///
/// Traps:
/// - `curl_multi_wakeup` must never reach a multi handle that was cleaned up: the handle is
///   published in the inbox only while it is alive, and every wakeup happens under the lock.
/// - A cancel may arrive before, after, or instead of its start; see ``perform(_:)``.
/// - The thread keeps `self` alive until it exits, so shutdown must be asked for explicitly
///   (``CurlClient`` does it in `deinit`).
final class CurlThread: Sendable {
    private enum Command: Sendable {
        case start(UInt64, TransferRequest, TransferContinuation)
        case cancel(UInt64)
        /// Call a batcher's handler (see ``PostBatcher``).
        case wake(BatchSink)
    }

    /// The multi handle as other threads may hold it: only to wake the curl thread up.
    /// `@unchecked` because `curl_multi_wakeup` is the one libcurl call that is thread-safe;
    /// ``Inbox/wakeup`` is cleared (under the lock) before the handle is cleaned up.
    private struct Wakeup: @unchecked Sendable {
        let multi: UnsafeMutableRawPointer

        func callAsFunction() {
            curl_multi_wakeup(multi)
        }
    }

    private struct Inbox {
        var commands: [Command] = []
        /// Set by the curl thread when it found no commands and is going to sleep in
        /// `curl_multi_poll`; cleared by whoever wakes it or by the thread taking the queue.
        var sleeping = false
        /// Set while the multi handle is alive: nil before the thread created it and once it
        /// is about to be cleaned up.
        var wakeup: Wakeup?
        var stopping = false
        var thread: pthread_t?
        var joinClaimed = false

        mutating func post(_ command: Command) {
            commands.append(command)
            if sleeping {
                sleeping = false
                wakeup?()
            }
        }

        /// Moves the queued commands into `batch` (empty on entry), handing the batch's storage
        /// back to the queue so neither side allocates in the steady state.
        mutating func take(into batch: inout [Command]) {
            swap(&commands, &batch)
            sleeping = false
        }

        mutating func take() -> [Command] {
            defer { commands.removeAll() }
            return commands
        }
    }

    private let inbox = Mutex(Inbox())
    private let nextID = Atomic<UInt64>(1)
    private let configuration: CurlConfiguration

    /// Starts the thread. Throws if libcurl cannot be initialised or the thread not created.
    /// The thread's name as `top -H`, `perf` and debuggers show it (at most 15 bytes are kept).
    private let name: String

    init(configuration: CurlConfiguration, name: String = "curl") throws(HTTPError) {
        self.configuration = configuration
        self.name = name
        try CurlGlobal.initialise()
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let code = pthread_create(&thread, nil, { context in
            Unmanaged<CurlThread>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, context)
        guard code == 0 else {
            Unmanaged<CurlThread>.fromOpaque(context).release()
            throw HTTPError(kind: .other, message: "cannot start the curl thread: pthread_create returned \(code)")
        }
        inbox.withLock { $0.thread = thread }
    }

    /// Runs `request` on the curl thread and waits for it.
    ///
    /// Cancelling the calling task removes the transfer on the curl thread (closing its
    /// connection if it was mid-exchange) and throws `CancellationError`. Shutdown throws
    /// ``HTTPError/Kind/shutdown``.
    func perform(_ request: TransferRequest) async throws -> TransferResult {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { continuation in
                submit(id: id, request: request, continuation: continuation)
            }
        } onCancel: {
            inbox.withLock { $0.post(.cancel(id)) }
        }
    }

    /// Queues a start, unless the client is stopping or the task is already cancelled.
    ///
    /// Why checking `Task.isCancelled` under the lock closes the cancel race: a task is marked
    /// cancelled before its cancellation handler runs, and the handler posts under this same
    /// lock. So either the handler's `.cancel` is queued after this `.start` (and the thread
    /// sees them in that order), or the task is already marked cancelled here and nothing is
    /// started; the stray `.cancel` then finds no transfer and is ignored.
    /// Queues a call of `sink`'s handler, unless the client is stopping.
    func wake(_ sink: BatchSink) {
        inbox.withLock { inbox in
            if !inbox.stopping { inbox.post(.wake(sink)) }
        }
    }

    private func submit(id: UInt64, request: TransferRequest, continuation: TransferContinuation) {
        let refusal: (any Error)? = inbox.withLock { inbox in
            if inbox.stopping { return HTTPError.shutDown }
            if Task.isCancelled { return CancellationError() }
            inbox.post(.start(id, request, continuation))
            return nil
        }
        if let refusal { continuation.resume(throwing: refusal) }
    }

    /// Stops the thread: queued and running requests fail with ``HTTPError/Kind/shutdown``,
    /// later ones are refused. The first caller waits until the thread has exited (and the
    /// multi handle, with its connections, is gone); concurrent or later callers return at once.
    func shutdown() {
        let thread: pthread_t? = inbox.withLock { inbox in
            if !inbox.stopping {
                inbox.stopping = true
                inbox.wakeup?()
            }
            guard !inbox.joinClaimed, let thread = inbox.thread else { return nil }
            inbox.joinClaimed = true
            return thread
        }
        guard let thread else { return }
        if pthread_equal(thread, pthread_self()) != 0 {
            // Called from the curl thread itself (e.g. a client released inside a transfer's
            // configuration): it cannot wait for itself; it exits on its next loop turn.
            pthread_detach(thread)
        } else {
            pthread_join(thread, nil)
        }
    }

    // MARK: The curl thread

    private func run() {
        Self.blockSIGPIPE()
        ccurl_name_thread(String(decoding: name.utf8.prefix(15), as: UTF8.self))
        let multi: MultiHandle
        do {
            multi = try MultiHandle(configuration: configuration)
        } catch {
            let leftovers = inbox.withLock { inbox in
                inbox.stopping = true
                return inbox.take()
            }
            Self.refuse(leftovers, with: error)
            return
        }
        let wakeup = Wakeup(multi: multi.raw)
        inbox.withLock { $0.wakeup = wakeup }

        var batch: [Command] = []
        batch.reserveCapacity(64)
        // Batchers with running requests or a pending wake (few: one per pusher pool).
        var sinks: [ObjectIdentifier: BatchSink] = [:]
        // Whether libcurl has been driven since the last poll; if so, an empty queue means sleep.
        var performed = false
        while true {
            let (stopping, sleep) = inbox.withLock { inbox -> (Bool, Bool) in
                if performed, inbox.commands.isEmpty, !inbox.stopping {
                    inbox.sleeping = true
                    return (false, true)
                }
                inbox.take(into: &batch)
                return (inbox.stopping, false)
            }
            if sleep {
                // The cap only bounds how long a lost wakeup could go unnoticed; libcurl
                // shortens the wait to its own next timeout (connect and total timeouts included).
                multi.wait(maxMilliseconds: 1000)
                performed = false
                continue
            }
            for command in batch {
                switch command {
                case .start(let id, let request, let continuation):
                    if stopping {
                        continuation.resume(throwing: HTTPError.shutDown)
                    } else {
                        multi.start(id: id, request: request, sink: .continuation(continuation))
                    }
                case .cancel(let id):
                    multi.cancel(id: id)
                case .wake(let sink):
                    sink.wakePending.store(false, ordering: .releasing)
                    sink.woken = true
                    sinks[ObjectIdentifier(sink)] = sink
                }
            }
            batch.removeAll(keepingCapacity: true)
            if stopping { break }
            multi.perform()
            performed = true
            // Handlers run after the step that completed their requests; what they start (or
            // what completes at once) is driven before the thread sleeps.
            for (key, sink) in sinks {
                if sink.hasWork, runBatch(sink, multi: multi, refusing: nil) { performed = false }
                if !sink.hasWork, sink.running.isEmpty { sinks[key] = nil }
            }
        }

        // Unpublish first: from here on nobody may call curl_multi_wakeup on this handle.
        let leftovers = inbox.withLock { inbox in
            inbox.wakeup = nil
            return inbox.take()
        }
        Self.refuse(leftovers, with: HTTPError.shutDown)
        multi.failAll(with: HTTPError.shutDown)
        // Batchers get their failed requests; what they start now is refused. A few rounds
        // only: a handler that keeps starting requests is not waited for.
        for _ in 0..<3 {
            for sink in sinks.values where sink.hasWork {
                _ = runBatch(sink, multi: multi, refusing: HTTPError.shutDown)
            }
        }
        // `multi` is released here, on this thread: its deinit runs curl_multi_cleanup.
    }

    /// Calls `sink`'s handler with its completions, then starts and cancels what it asked for
    /// (or fails its starts with `refusing`). Returns whether anything was started or the sink
    /// has work again.
    private func runBatch(_ sink: BatchSink, multi: MultiHandle, refusing: HTTPError?) -> Bool {
        var posts = PostBatch(completions: sink.takeCompletions())
        sink.handler(&posts)
        for tag in posts.cancels {
            if let id = sink.running[tag] { multi.cancel(id: id) }
        }
        for post in posts.starts {
            if let refusing {
                sink.completed(tag: post.tag, .failure(refusing))
                continue
            }
            var request = HTTPRequest(method: "POST", url: post.url, body: post.body, headers: post.headers)
            request.collectsHeaders = post.collectsResponseHeaders
            request.addressPolicy = post.addressPolicy
            // Validated by the transfer before it is configured (`TransferRequest.configure`):
            // a refusal then completes through the sink like any failure to start.
            let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
            sink.running[post.tag] = id
            // Header collection changes the options: only the usual kind is kept warm.
            let shape = post.collectsResponseHeaders ? nil
                : Transfer.PostShape(headers: post.headers, timeout: post.timeout, https: HTTPRequest.isHTTPS(post.url),
                                     addressPolicy: post.addressPolicy)
            multi.start(id: id, request: TransferRequest(timeout: post.timeout, post: request, shape: shape),
                        sink: .batch(sink, tag: post.tag))
        }
        return !posts.starts.isEmpty || sink.hasWork
    }

    private static func refuse(_ commands: [Command], with error: HTTPError) {
        for case .start(_, _, let continuation) in commands {
            continuation.resume(throwing: error)
        }
    }

    /// With `CURLOPT_NOSIGNAL` libcurl no longer ignores SIGPIPE around its socket writes, and
    /// a write to a connection the peer closed (through OpenSSL, say) would kill the process.
    /// SIGPIPE from a write is delivered to the writing thread, so blocking it here is enough
    /// and leaves the rest of the process alone.
    private static func blockSIGPIPE() {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
    }
}
