import Synchronization

/// Client-wide settings applied to every transfer. Fixed when the client is created.
struct CurlConfiguration: Sendable {
    var connectTimeout: Duration
    var maxResponseSize: Int
    var maxConnectionsPerHost: Int
    var connectionCacheSize: Int
    /// Easy handles made (`curl_easy_init`) by the client's threads, and freed when they went
    /// quiet, for the tests. Both change rarely: nothing here is written per request.
    let handles = HandleCounts()

    final class HandleCounts: Sendable {
        let made = Atomic<Int>(0)
        let freedWhenQuiet = Atomic<Int>(0)
    }
}

/// A request as the curl thread receives it: the total timeout, plus a closure that sets up a
/// fresh easy handle *on the curl thread*.
///
/// This is the seam between protocols: ``HTTPRequest/configure(_:)`` is one such closure,
/// ``SMTPRequest/configure(_:)`` another (run by the client's second, mail-only ``CurlThread``;
/// see ``CurlClient``).
///
/// The closure must only configure: it runs on the curl thread, which every transfer of the
/// client shares, so it must not block or await.
struct TransferRequest: Sendable {
    var timeout: Duration
    /// Sets up the handle, unless this is a batch POST (`http`).
    private let closure: (@Sendable (Transfer) throws(HTTPError) -> Void)?
    /// A batch POST, configured by ``HTTPRequest/configure(_:)`` (kept as a value: no closure
    /// is allocated per request).
    let http: HTTPRequest?
    /// The batch POST's shape, when a handle left configured by a POST of the same shape may be
    /// reused without a reset (``Transfer/rewarm(shape:url:body:)``).
    ///
    /// Plain optional fields, not an enum with a payload per kind: taking such a payload apart
    /// copied the whole request (every string, array and dictionary in it) on each start.
    let shape: Transfer.PostShape?

    init(timeout: Duration, configure: @escaping @Sendable (Transfer) throws(HTTPError) -> Void) {
        self.timeout = timeout
        closure = configure
        http = nil
        shape = nil
    }

    init(timeout: Duration, post: HTTPRequest, shape: Transfer.PostShape?) {
        self.timeout = timeout
        closure = nil
        http = post
        self.shape = shape
    }

    func configure(_ transfer: Transfer) throws(HTTPError) {
        if let closure {
            try closure(transfer)
        } else if let http {
            // Checked here, before the handle is configured from scratch: a warm handle only
            // ever takes a request of the shape (headers included) it was configured for.
            try http.validate()
            try http.configure(transfer)
        }
    }
}

/// What a finished transfer produced, before it is shaped into a protocol's answer.
/// `responseCode` is `CURLINFO_RESPONSE_CODE`: the HTTP status, or the last SMTP reply code.
struct TransferResult: Sendable {
    var responseCode: Int
    var headers: [(String, String)]
    var body: [UInt8]
    /// A 429 or 503's `Retry-After`, in seconds from now.
    var retryAfterSeconds: Int64?
}

typealias TransferContinuation = UnsafeContinuation<TransferResult, any Error>

/// Who receives a transfer's result: an awaiting caller, or a batch (see ``PostBatcher``).
enum TransferSink: @unchecked Sendable {
    case continuation(TransferContinuation)
    /// Curl-thread only: the result is appended to the sink's completions under `tag`.
    case batch(BatchSink, tag: UInt64)

    func deliver(_ result: Result<TransferResult, any Error>) {
        switch self {
        case .continuation(let c): c.resume(with: result)
        case .batch(let sink, let tag): sink.completed(tag: tag, result)
        }
    }
}

extension Duration {
    /// This duration in whole milliseconds for libcurl's `*_MS` options, rounded up and at
    /// least 1: libcurl reads 0 as "no timeout", which a tiny or negative duration must never
    /// silently become.
    var curlMilliseconds: Int {
        guard self > .zero else { return 1 }
        let (seconds, attoseconds) = components
        // Durations beyond ~24 days are clamped; libcurl timeouts are a `long` of ms anyway.
        let cappedSeconds = min(seconds, Int64(Int32.max / 1000))
        let attoPerMilli: Int64 = 1_000_000_000_000_000
        let millis = cappedSeconds * 1000 + (attoseconds + attoPerMilli - 1) / attoPerMilli
        return max(1, Int(millis))
    }
}
