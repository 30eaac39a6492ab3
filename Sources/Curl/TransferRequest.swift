/// Client-wide settings applied to every transfer. Fixed when the client is created.
struct CurlConfiguration: Sendable {
    var connectTimeout: Duration
    var maxResponseSize: Int
    var maxConnectionsPerHost: Int
    var connectionCacheSize: Int
}

/// A request as the curl thread receives it: the total timeout, plus a closure that sets up a
/// fresh easy handle *on the curl thread*.
///
/// This is the seam between protocols: ``HTTPRequest/configure(_:)`` is one such closure,
/// ``SMTPRequest/configure(_:)`` another (run by the client's second, mail-only ``CurlThread``;
/// see ``HTTPClient``).
///
/// The closure must only configure: it runs on the curl thread, which every transfer of the
/// client shares, so it must not block or await.
struct TransferRequest: Sendable {
    var timeout: Duration
    var configure: @Sendable (Transfer) throws(HTTPError) -> Void
    /// For a batch POST: its shape, URL and body, so that a handle left configured by a POST of
    /// the same shape is reused without a reset (see ``Transfer/rewarm(shape:url:body:)``).
    var post: (shape: Transfer.PostShape, url: String, body: [UInt8])? = nil
}

/// What a finished transfer produced, before it is shaped into a protocol's answer.
/// `responseCode` is `CURLINFO_RESPONSE_CODE`: the HTTP status, or the last SMTP reply code.
struct TransferResult: Sendable {
    var responseCode: Int
    var headers: [(String, String)]
    var body: [UInt8]
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
