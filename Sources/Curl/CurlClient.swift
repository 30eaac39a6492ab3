import Synchronization

/// An HTTP client for a long-running process: one libcurl multi handle on one dedicated
/// thread, shared by every request.
///
/// Create one per process (or per independent subsystem) and keep it: connections stay open
/// in the multi handle's pool between requests (HTTP/1.1 keep-alive, HTTP/2 multiplexing over
/// TLS), at most `maxConnectionsPerHost` per host; further concurrent requests to that host
/// wait inside libcurl for a free connection, and that wait counts against their timeout.
///
/// The client also sends mail over SMTP (``sendMail(_:)``), with the same machinery on a
/// second thread of its own, started with the first message: libcurl waits for an SMTP
/// server's answer to the end of a message in a blocking call, which on the HTTP thread would
/// hold up every HTTP request for as long as the mail server takes.
///
/// Traps:
/// - Call ``shutdown()`` (or drop the last reference) to stop the thread; until then it lives
///   on, because its thread keeps its state alive.
/// - An error status (404, 500) is a successful ``HTTPResponse``; only failures to get an
///   answer throw ``HTTPError``. Cancelling the calling task throws `CancellationError`.
/// - Proxy environment variables (`http_proxy`, `https_proxy`, `no_proxy`) are honoured, as
///   libcurl does by default, except by requests with an ``AddressPolicy``.
public final class CurlClient: Sendable {
    /// Time allowed to resolve the host and establish TCP and TLS, per request.
    public let connectTimeout: Duration
    /// The largest response body accepted, in bytes; a larger one fails with
    /// ``HTTPError/Kind/responseTooLarge`` as soon as it is detected.
    public let maxResponseSize: Int
    /// The most connections open at once to one host (`CURLMOPT_MAX_HOST_CONNECTIONS`).
    public let maxConnectionsPerHost: Int

    let thread: CurlThread
    /// Runs ``sendMail(_:)``'s transfers.
    let mailThread: LazyCurlThread
    /// More HTTP threads, each with its own multi handle, for batchers that spread their work
    /// (``makeBatcher(thread:_:)`` with an index above 0), started on first use.
    let extraThreads: Mutex<ExtraThreads> = Mutex(ExtraThreads())

    struct ExtraThreads: ~Copyable {
        var threads: [Int: LazyCurlThread] = [:]
        /// Set by ``shutdown()``: no thread is started after it.
        var closed = false
    }
    let configuration: CurlConfiguration

    /// Starts the client's thread.
    ///
    /// - Parameters:
    ///   - connectTimeout: per request; the request's total `timeout` still applies if shorter.
    ///   - maxResponseSize: body cap in bytes (default 1 MiB).
    ///   - maxConnectionsPerHost: connection cap per host (default 16).
    ///   - connectionCacheSize: idle connections kept open for reuse, over all hosts.
    public init(
        connectTimeout: Duration = .seconds(10),
        maxResponseSize: Int = 1 << 20,
        maxConnectionsPerHost: Int = 16,
        connectionCacheSize: Int = 64
    ) throws(HTTPError) {
        precondition(maxResponseSize >= 0 && maxConnectionsPerHost > 0 && connectionCacheSize > 0)
        self.connectTimeout = connectTimeout
        self.maxResponseSize = maxResponseSize
        self.maxConnectionsPerHost = maxConnectionsPerHost
        let configuration = CurlConfiguration(
            connectTimeout: connectTimeout,
            maxResponseSize: maxResponseSize,
            maxConnectionsPerHost: maxConnectionsPerHost,
            connectionCacheSize: connectionCacheSize
        )
        self.configuration = configuration
        thread = try CurlThread(configuration: configuration, name: "pushlog-curl")
        mailThread = LazyCurlThread(configuration: configuration, name: "pushlog-smtp")
    }

    deinit {
        shutdown()
    }

    /// Easy handles made so far by this client's threads (each request takes an idle one when
    /// there is one).
    var easyHandlesMade: Int { configuration.handles.made.load(ordering: .relaxed) }

    /// Idle easy handles freed so far because the client's threads went quiet.
    var easyHandlesFreedWhenQuiet: Int { configuration.handles.freedWhenQuiet.load(ordering: .relaxed) }

    /// POSTs `body` to `url` and returns the answer, whatever its status.
    ///
    /// Trap: without a `Content-Type` in `headers`, libcurl sends
    /// `application/x-www-form-urlencoded`; pass `"Content-Type": "application/json"` for JSON.
    public func post(
        _ url: String,
        body: [UInt8],
        headers: [String: String] = [:],
        timeout: Duration,
        addressPolicy: AddressPolicy? = nil
    ) async throws -> HTTPResponse {
        try await send(method: "POST", url: url, body: body, headers: headers, timeout: timeout, addressPolicy: addressPolicy)
    }

    /// Sends one HTTP request and returns the answer, whatever its status.
    ///
    /// - Parameters:
    ///   - method: `GET` and `HEAD` without a body use libcurl's own modes; any other method
    ///     (or any method with a body) sends `body` with that method.
    ///   - url: `http://` or `https://` only; other schemes fail with `.invalidRequest`.
    ///   - headers: added to libcurl's (`Host`, `Accept: */*`, `Content-Length`); an empty
    ///     value is sent as an empty header. Redirects are not followed.
    ///   - timeout: for the whole exchange, including any wait for a free connection.
    ///   - addressPolicy: when set, only the addresses it permits are connected to, checked on
    ///     each address libcurl is about to connect to (after resolution, so DNS rebinding does
    ///     not get round it), and no proxy is used; a refused connection throws
    ///     ``HTTPError/Kind/blockedAddress``. Trap: an open connection is reused without a new
    ///     check, and connections are shared by every request of the client to the same host
    ///     and port: give all requests to a host the same policy (gateway pushes do).
    /// - Throws: ``HTTPError`` if no complete answer arrived; `CancellationError` if the
    ///   calling task was cancelled (the transfer is then aborted on the curl thread).
    public func send(
        method: String,
        url: String,
        body: [UInt8] = [],
        headers: [String: String] = [:],
        timeout: Duration,
        addressPolicy: AddressPolicy? = nil
    ) async throws -> HTTPResponse {
        var request = HTTPRequest(method: method, url: url, body: body, headers: headers)
        request.addressPolicy = addressPolicy
        try request.validate()
        let result = try await thread.perform(TransferRequest(timeout: timeout, configure: request.configure))
        return HTTPResponse(status: result.responseCode, headers: result.headers, body: result.body,
                            retryAfterSeconds: result.retryAfterSeconds)
    }

    /// Stops the client: pending requests fail with ``HTTPError/Kind/shutdown`` (mail with
    /// ``SMTPError/Kind/shutdown``), later ones are refused with it, and open connections are
    /// closed. Blocks (briefly) until the curl threads have exited. Calling it again does nothing.
    public func shutdown() {
        thread.shutdown()
        mailThread.shutdown()
        let extra = extraThreads.withLock { extra in
            extra.closed = true
            return Array(extra.threads.values)
        }
        for t in extra { t.shutdown() }
    }
}
