import Synchronization

/// A POST for ``PostBatcher``: what ``CurlClient/post(_:body:headers:timeout:)`` takes, plus the
/// caller's `tag`, by which its completion comes back.
public struct PostRequest: Sendable {
    public var tag: UInt64
    public var url: String
    public var body: [UInt8]
    public var headers: [String: String]
    public var timeout: Duration
    /// Whether the completion's ``HTTPResponse/headers`` are filled in; off by default, as
    /// collecting them costs a callback and two strings per header line.
    public var collectsResponseHeaders: Bool
    /// Set: only addresses it permits are connected to, and proxies are not used.
    public var addressPolicy: AddressPolicy?

    public init(tag: UInt64, url: String, body: [UInt8], headers: [String: String] = [:], timeout: Duration,
                collectsResponseHeaders: Bool = false, addressPolicy: AddressPolicy? = nil) {
        self.addressPolicy = addressPolicy
        self.tag = tag
        self.url = url
        self.body = body
        self.headers = headers
        self.timeout = timeout
        self.collectsResponseHeaders = collectsResponseHeaders
    }
}

/// A finished ``PostRequest``: the answer (whatever its status), or why there is none
/// (``HTTPError``; `CancellationError` after ``PostBatch/cancel(tag:)``).
public struct PostCompletion: Sendable {
    public var tag: UInt64
    public var result: Result<HTTPResponse, any Error>
}

/// What a ``PostBatcher``'s handler sees and does in one call: the completions since its last
/// call, and the requests it starts or cancels (started when the handler returns).
public struct PostBatch {
    public let completions: [PostCompletion]
    var starts: [PostRequest] = []
    var cancels: [UInt64] = []

    init(completions: [PostCompletion]) { self.completions = completions }

    /// Starts `request` when the handler returns. Tags must be unique among running requests.
    public mutating func start(_ request: consuming PostRequest) { starts.append(request) }

    /// Aborts the running request `tag` (its completion, `CancellationError`, comes in a later
    /// call); an unknown tag is ignored.
    public mutating func cancel(tag: UInt64) { cancels.append(tag) }
}

/// Many POSTs with few thread hops: a handler that runs *on the client's curl thread*, called
/// with every completion of one step of the multi handle at once (after ``wake()`` too, with
/// whatever completed, possibly nothing), and starting the next requests itself. No task is
/// resumed per request, and requests started in a handler need no wake-up.
///
/// Traps:
/// - The handler runs on the curl thread that every request of the client shares: it must not
///   block or await (quick reads are fine; waiting on another thread is not).
/// - After the client shuts down, running requests complete with ``HTTPError/Kind/shutdown``
///   in a last call or two, requests started then are refused the same way, and ``wake()``
///   does nothing.
public final class PostBatcher: Sendable {
    let sink: BatchSink
    private let thread: CurlThread

    init(thread: CurlThread, handler: @escaping @Sendable (inout PostBatch) -> Void) {
        self.thread = thread
        self.sink = BatchSink(handler: handler)
    }

    /// Has the handler called soon on the curl thread. Callable from any thread; wakes that
    /// arrive before the call are coalesced into one.
    public func wake() {
        guard !sink.wakePending.exchange(true, ordering: .acquiringAndReleasing) else { return }
        thread.wake(sink)
    }
}

extension CurlClient {
    /// A batch channel on this client's curl thread (see ``PostBatcher``).
    public func makeBatcher(_ handler: @escaping @Sendable (inout PostBatch) -> Void) -> PostBatcher {
        PostBatcher(thread: thread, handler: handler)
    }

    /// A batch channel on curl thread `index` of this client: 0 is the thread every
    /// ``post(_:body:headers:timeout:)`` uses; others are started on first use, each with its
    /// own multi handle (its own connections, `maxConnectionsPerHost` of them per host), so
    /// batchers on different threads run on different cores. Throws ``HTTPError`` when the
    /// thread cannot be started or the client is shut down.
    public func makeBatcher(thread index: Int, _ handler: @escaping @Sendable (inout PostBatch) -> Void) throws(HTTPError) -> PostBatcher {
        precondition(index >= 0)
        if index == 0 { return makeBatcher(handler) }
        let lazy = try extraThreads.withLock { extra throws(HTTPError) -> LazyCurlThread in
            guard !extra.closed else { throw HTTPError.shutDown }
            if let t = extra.threads[index] { return t }
            let t = LazyCurlThread(configuration: configuration, name: "pushlog-curl-\(index)")
            extra.threads[index] = t
            return t
        }
        return PostBatcher(thread: try lazy.get(), handler: handler)
    }
}

/// A batcher's state on the curl thread. `@unchecked Sendable`: apart from ``wakePending``,
/// everything is touched by the curl thread only.
final class BatchSink: @unchecked Sendable {
    let handler: @Sendable (inout PostBatch) -> Void
    let wakePending = Atomic<Bool>(false)
    /// Curl thread only: completions not yet handed to the handler, and whether it was woken.
    private(set) var completions: [PostCompletion] = []
    var woken = false
    /// Curl thread only: running requests, tag → transfer id.
    var running: [UInt64: UInt64] = [:]

    init(handler: @escaping @Sendable (inout PostBatch) -> Void) { self.handler = handler }

    var hasWork: Bool { woken || !completions.isEmpty }

    func completed(tag: UInt64, _ result: Result<TransferResult, any Error>) {
        running[tag] = nil
        completions.append(PostCompletion(tag: tag, result: result.map {
            HTTPResponse(status: $0.responseCode, headers: $0.headers, body: $0.body, retryAfterSeconds: $0.retryAfterSeconds)
        }))
    }

    func takeCompletions() -> [PostCompletion] {
        woken = false
        defer { completions.removeAll(keepingCapacity: true) }
        return completions
    }
}
