import CCurl
import Synchronization

/// The curl multi handle and the transfers it is running.
///
/// Traps:
/// - Curl-thread only, like everything libcurl hands out: create, use and deinitialise it on
///   the thread that runs ``CurlThread``'s loop. (`curl_multi_wakeup` on ``raw`` is the one
///   call other threads may make.)
/// - The multi handle owns the connection pool: connections outlive the easy handles that
///   opened them, which is what makes keep-alive and HTTP/2 reuse work across requests.
/// - A `CURLMsg` from `curl_multi_info_read` is freed by `curl_multi_remove_handle` of its
///   easy handle: read its fields first.
/// - Easy handles are reused (see ``Transfer``): a finished transfer's handle is removed,
///   reset and kept in ``idle`` (at most ``idleLimit``), and the next request takes it instead
///   of paying for `curl_easy_init`/`curl_easy_cleanup` and the buffers around them.
final class MultiHandle {
    /// The `CURLM *` (a raw pointer: libcurl 7.88 declares `CURLM` as `void`).
    let raw: UnsafeMutableRawPointer
    private let configuration: CurlConfiguration
    private var transfers: [UInt64: Transfer] = [:]
    /// Reset easy handles ready for the next request, most recently used last.
    private var idle: [Transfer] = []
    /// Since when nothing has run while more than ``quietIdleLimit`` handles were idle.
    private var quiet: ContinuousClock.Instant?
    /// The most idle handles kept: as many as connections may be kept open (at least 64). A
    /// busy client's requests in flight go up and down by hundreds from one step to the next;
    /// with fewer kept, every such swing cleaned handles up and made them again
    /// (`curl_easy_init` and a full configuration, a sixth of all requests at ~100 in flight).
    /// Once nothing has run for ``quietAfter``, only ``quietIdleLimit`` are kept.
    private let idleLimit: Int

    init(configuration: CurlConfiguration) throws(HTTPError) {
        guard let raw = curl_multi_init() else {
            throw HTTPError(kind: .other, message: "curl_multi_init failed")
        }
        self.raw = raw
        self.configuration = configuration
        idleLimit = max(64, configuration.connectionCacheSize)
        // Beyond the cap, libcurl queues transfers internally until a connection frees up,
        // rather than opening a connection per concurrent request.
        try check(ccurl_multi_setopt_long(raw, CURLMOPT_MAX_HOST_CONNECTIONS, configuration.maxConnectionsPerHost))
        // Idle connections kept for reuse. libcurl's default grows and shrinks with the number
        // of easy handles added, so after a burst it would close most of them.
        try check(ccurl_multi_setopt_long(raw, CURLMOPT_MAXCONNECTS, configuration.connectionCacheSize))
        try check(ccurl_multi_setopt_long(raw, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX))
    }

    deinit {
        // Any transfer still here would be left with a dangling multi: finish them first.
        failAll(with: HTTPError.shutDown)
        idle.removeAll()  // curl_easy_cleanup of each; they are not in the multi handle
        curl_multi_cleanup(raw)
    }

    /// Takes an idle easy handle (or creates one), configures it and adds it. Failures before
    /// the transfer starts resume the caller at once.
    func start(id: UInt64, request: TransferRequest, sink: TransferSink) {
        let transfer: Transfer
        if let reused = idle.popLast() {
            transfer = reused
        } else if let created = Transfer(maxResponseSize: configuration.maxResponseSize) {
            configuration.handles.made.add(1, ordering: .relaxed)
            transfer = created
        } else {
            sink.deliver(.failure(HTTPError(kind: .other, message: "curl_easy_init failed")))
            return
        }
        transfer.begin(id: id, sink: sink)
        do {
            if let shape = request.shape, let http = request.http, try transfer.rewarm(shape: shape, url: http.url, body: http.body) {
                // The handle kept a POST of this shape's options: URL, body and id were enough.
            } else {
                transfer.resetIfNeeded()
                try transfer.prepare(connectTimeout: configuration.connectTimeout, timeout: request.timeout)
                try request.configure(transfer)
                if let shape = request.shape, let http = request.http {
                    transfer.markWarm((shape, http.url))
                } else {
                    transfer.markWarm(nil)
                }
            }
        } catch {
            transfer.finish(.failure(error))
            recycle(transfer)
            return
        }
        let code = curl_multi_add_handle(raw, transfer.easy)
        guard code == CURLM_OK else {
            transfer.finish(.failure(HTTPError(kind: .other, curlCode: Int(code.rawValue),
                                               message: String(cString: curl_multi_strerror(code)))))
            recycle(transfer)
            return
        }
        transfers[id] = transfer
    }

    /// Aborts a running transfer: removing it closes its connection if it was mid-exchange.
    /// An unknown id (already finished, or rejected before it started) is ignored.
    func cancel(id: UInt64) {
        guard let transfer = transfers.removeValue(forKey: id) else { return }
        transfer.prepareForRemoval()
        curl_multi_remove_handle(raw, transfer.easy)
        transfer.finish(.failure(CancellationError()))
        recycle(transfer)
    }

    /// Does whatever I/O is ready without blocking, then completes finished transfers.
    func perform() {
        var running: Int32 = 0
        // Transfer failures are reported per transfer by info_read, not here; an error here
        // means a broken multi handle, which the next calls report again.
        _ = curl_multi_perform(raw, &running)
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(raw, &remaining) {
            guard message.pointee.msg == CURLMSG_DONE else { continue }
            let easy = message.pointee.easy_handle
            let code = message.pointee.data.result
            complete(easy, code)
        }
    }

    /// Blocks until there is I/O, libcurl's next timeout is due, `curl_multi_wakeup` is called,
    /// or `maxMilliseconds` pass.
    func wait(maxMilliseconds: Int32) {
        trimIfQuiet()
        _ = curl_multi_poll(raw, nil, 0, maxMilliseconds, nil)
    }

    /// Idle handles kept once nothing has run for ``quietAfter``: the handles of a burst (up to
    /// the connection cache; a handle and its connection come to ~15 KB) are kept while requests
    /// flow, and given back when the client goes quiet.
    static let quietIdleLimit = 64
    static let quietAfter: Duration = .seconds(1)

    private func trimIfQuiet() {
        guard transfers.isEmpty, idle.count > Self.quietIdleLimit else {
            quiet = nil
            return
        }
        let now = ContinuousClock.now
        guard let since = quiet else {
            quiet = now
            return
        }
        guard now - since >= Self.quietAfter else { return }
        let freed = idle.count - Self.quietIdleLimit
        idle.removeFirst(freed)  // the least recently used; deinit cleans up
        configuration.handles.freedWhenQuiet.add(freed, ordering: .relaxed)
        quiet = nil
    }

    /// Fails every running transfer with `error` and removes it.
    func failAll(with error: HTTPError) {
        let running = transfers
        transfers.removeAll()
        for transfer in running.values {
            transfer.prepareForRemoval()
            curl_multi_remove_handle(raw, transfer.easy)
            transfer.finish(.failure(error))
        }
    }

    private func complete(_ easy: UnsafeMutableRawPointer?, _ code: CURLcode) {
        guard let easy else { return }
        var context: UnsafeMutableRawPointer?
        _ = ccurl_easy_getinfo_pointer(easy, CURLINFO_PRIVATE, &context)
        let id = UInt64(UInt(bitPattern: context))
        guard let transfer = transfers.removeValue(forKey: id) else {
            curl_multi_remove_handle(raw, easy)
            return
        }
        let result = transfer.result(for: code)
        curl_multi_remove_handle(raw, easy)
        // Resume first: the caller can go on (on another thread) while this handle is reset.
        transfer.finish(result)
        recycle(transfer)
    }

    /// Resets a finished transfer's handle (already out of the multi handle) and keeps it for
    /// the next request, or drops it (`curl_easy_cleanup`) when enough are idle.
    private func recycle(_ transfer: Transfer) {
        guard idle.count < idleLimit else { return }
        transfer.recycle()
        idle.append(transfer)
    }

    private func check(_ code: CURLMcode) throws(HTTPError) {
        guard code == CURLM_OK else {
            throw HTTPError(kind: .other, curlCode: Int(code.rawValue), message: String(cString: curl_multi_strerror(code)))
        }
    }
}
