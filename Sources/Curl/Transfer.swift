import CCurl

/// One libcurl easy handle, the buffers it fills, and who waits for it (a continuation, or a
/// ``BatchSink`` collecting completions for its handler).
///
/// Transfers are recycled: when one completes, ``MultiHandle`` removes its easy handle from
/// the multi handle, calls ``recycle()`` and keeps it on a free list; the next request takes it
/// with ``begin(id:sink:)``, then either resets it (`curl_easy_reset`) and sets every option
/// again (``prepare`` and the request's own configuration), or, for a batch POST of the same
/// shape as the handle's last transfer, sets only its URL, body and id
/// (``rewarm(shape:url:body:)``). Connections live in the multi handle's connection cache, not
/// in the easy handle, so a reused handle keeps reusing them.
///
/// Traps:
/// - Lives and dies on the curl thread only (created, configured, completed and deinitialised
///   there); it is deliberately not `Sendable`.
/// - libcurl keeps raw pointers to this object (`CURLOPT_WRITEDATA`, `CURLOPT_HEADERDATA`,
///   `CURLOPT_OPENSOCKETDATA`), to its error buffer, its request-body buffer and its
///   `curl_slist`s. They stay valid because
///   the object outlives its easy handle: `deinit` is the only place that calls
///   `curl_easy_cleanup`, and the multi handle removes the easy handle before recycling or
///   dropping the transfer. The body buffer and the lists are only replaced while the handle
///   is idle (after `curl_easy_reset`, during configuration).
/// - The sink is given a result exactly once, by ``finish(_:)``; a transfer dropped unfinished
///   fails its caller rather than leaking a suspended task.
final class Transfer {
    /// The current request's id (`CURLOPT_PRIVATE`); changes each time the handle is reused.
    private(set) var id: UInt64 = 0
    /// The `CURL *`. Valid until `deinit`.
    let easy: UnsafeMutableRawPointer

    private var sink: TransferSink?
    private let maxResponseSize: Int
    private var body: [UInt8] = []
    private var headers: [(String, String)] = []
    /// Set by the write callback when it refuses data for exceeding `maxResponseSize`; libcurl
    /// then reports a generic `CURLE_WRITE_ERROR`, which this turns into `.responseTooLarge`.
    private var exceededSizeLimit = false
    /// Lists handed to libcurl (headers, SMTP recipients), at most one per option, with the key
    /// they were built from: libcurl does not copy them, and a reused handle whose request has
    /// the same key sets the same list again instead of building a new one.
    private var lists: [CachedList] = []
    /// `CURLOPT_ERRORBUFFER`: libcurl writes its detailed message here.
    private let errorBuffer: UnsafeMutablePointer<CChar>
    /// `CURLOPT_POSTFIELDS` (not copied by libcurl): the request body, grown as needed and
    /// reused. Never NULL, even for an empty body (see ``setBody(_:)``).
    private var requestBody: UnsafeMutableRawPointer
    private var requestBodyCapacity: Int
    /// `CURLOPT_UPLOAD` data (an SMTP message), handed to libcurl piece by piece by the read
    /// callback; ``uploadOffset`` is how much of it libcurl has taken.
    private var upload: [UInt8] = []
    private var uploadOffset = 0
    /// Set by ``usesSMTP()``: the last error reply is kept (``lastErrorReply``), so that a
    /// failure can quote the server's own words ("550 5.1.1 no such user"), and
    /// ``prepareForRemoval()`` works around libcurl's SMTP done phase.
    private var speaksSMTP = false
    private var lastErrorReply: String?
    /// Set by ``vetConnections(_:)``: every address libcurl opens a socket for must be one
    /// this policy permits. Kept while the options are (a warm handle's shape includes it).
    private var addressPolicy: AddressPolicy?
    /// The last address the policy refused during this transfer: a connect failure is then
    /// reported as ``HTTPError/Kind/blockedAddress``.
    private var refusedAddress: IPAddress?

    private struct CachedList {
        var option: CURLoption
        var key: ListKey
        var list: UnsafeMutablePointer<curl_slist>?
    }

    /// What a `curl_slist` was built from, compared to decide whether it can be set again.
    /// (Concrete cases rather than `AnyHashable`: wrapping a dictionary in `AnyHashable`
    /// converts it to `[AnyHashable: AnyHashable]`, which costs more than it saves.)
    enum ListKey: Equatable {
        /// The lines themselves.
        case lines([String])
        /// Name/value pairs the lines are derived from (HTTP request headers).
        case fields([String: String])
    }

    /// Returns `nil` if libcurl cannot allocate an easy handle.
    init?(maxResponseSize: Int) {
        guard let easy = curl_easy_init() else { return nil }
        self.easy = easy
        self.maxResponseSize = maxResponseSize
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        requestBodyCapacity = 1024
        requestBody = .allocate(byteCount: requestBodyCapacity, alignment: 16)
    }

    deinit {
        curl_easy_cleanup(easy)
        // Only after cleanup: libcurl may read the lists and the body until then.
        for cached in lists {
            if let list = cached.list { curl_slist_free_all(list) }
        }
        errorBuffer.deallocate()
        requestBody.deallocate()
        sink?.deliver(.failure(HTTPError(kind: .other, message: "transfer dropped before completion")))
    }

    // MARK: Reuse

    /// Attaches a new request to this (fresh or recycled) handle.
    func begin(id: UInt64, sink: TransferSink) {
        self.id = id
        self.sink = sink
        errorBuffer[0] = 0
        refusedAddress = nil
    }

    /// The shape and URL of the batch POST whose options the handle still holds (see
    /// ``markWarm(_:)``; nil when unknown). The next POST of the same shape sets only its own
    /// URL (when it differs), body and id, as a C client reusing its handles would.
    private var warmShape: PostShape?
    private var warmURL: String?
    /// Set by ``recycle()``: the options are the last transfer's until ``resetIfNeeded()``.
    private var needsReset = false

    /// Everything a batch POST sets on a handle apart from its URL, body and id.
    struct PostShape: Equatable {
        var headers: [String: String]
        var timeout: Duration
        var https: Bool
        var addressPolicy: AddressPolicy?
    }

    /// Puts every option back to its default (`curl_easy_reset`) if a transfer ran since the
    /// last reset. Call before configuring a request from scratch.
    func resetIfNeeded() {
        guard needsReset else { return }
        curl_easy_reset(easy)
        needsReset = false
        markWarm(nil)
        addressPolicy = nil
    }

    /// Records what a full configuration just set: a batch POST's shape and URL, or nil for any
    /// other request (its options are not reused).
    func markWarm(_ post: (shape: PostShape, url: String)?) {
        warmShape = post?.shape
        warmURL = post?.url
    }

    /// Reuses the options left by the last transfer, which had `shape`: sets only this
    /// request's URL and body. Returns false (changing nothing) when the handle holds another
    /// shape; then reset and configure it in full.
    func rewarm(shape: PostShape, url: String, body: [UInt8]) throws(HTTPError) -> Bool {
        guard needsReset, warmShape == shape else { return false }
        needsReset = false
        try check(ccurl_easy_setopt_pointer(easy, CURLOPT_PRIVATE, UnsafeMutableRawPointer(bitPattern: UInt(id))), CURLOPT_PRIVATE)
        if url != warmURL {
            try set(CURLOPT_URL, url)
            warmURL = url
        }
        try setBody(body)
        return true
    }

    /// Makes the handle idle again: the response buffers emptied, and the options marked for a
    /// reset (done by ``resetIfNeeded()``, unless ``rewarm(shape:url:body:)`` reuses them). Call
    /// only once the easy handle is out of the multi handle and the transfer is finished.
    func recycle() {
        needsReset = true
        id = 0
        body = []
        headers = []
        exceededSizeLimit = false
        upload = []
        uploadOffset = 0
        speaksSMTP = false
        lastErrorReply = nil
        if requestBodyCapacity > Self.retainedBodyCapacity {
            // An idle handle should not pin a large body's buffer.
            requestBody.deallocate()
            requestBodyCapacity = 1024
            requestBody = .allocate(byteCount: requestBodyCapacity, alignment: 16)
        }
    }

    /// The largest request-body buffer an idle handle keeps.
    private static let retainedBodyCapacity = 64 << 10

    // MARK: Options common to every protocol

    /// Sets what every transfer needs, whatever the protocol; call before the request's own
    /// configuration.
    func prepare(connectTimeout: Duration, timeout: Duration) throws(HTTPError) {
        let context = Unmanaged.passUnretained(self).toOpaque()
        // Signals cannot be used to time out name resolution in a multi-threaded process.
        try set(CURLOPT_NOSIGNAL, 1)
        // The id, not a pointer, identifies the transfer when curl_multi_info_read reports it:
        // a stale id finds nothing, whereas a stale pointer would be a use-after-free.
        try check(ccurl_easy_setopt_pointer(easy, CURLOPT_PRIVATE, UnsafeMutableRawPointer(bitPattern: UInt(id))), CURLOPT_PRIVATE)
        try check(ccurl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer), CURLOPT_ERRORBUFFER)
        try check(ccurl_easy_setopt_write_callback(easy, CURLOPT_WRITEFUNCTION, { data, size, count, context in
            guard let context else { return 0 }
            return Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
                .receiveBody(UnsafeRawBufferPointer(start: data, count: size * count))
        }), CURLOPT_WRITEFUNCTION)
        try check(ccurl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, context), CURLOPT_WRITEDATA)
        try check(ccurl_easy_setopt_write_callback(easy, CURLOPT_HEADERFUNCTION, { data, size, count, context in
            guard let context else { return 0 }
            return Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
                .receiveHeaderLine(UnsafeRawBufferPointer(start: data, count: size * count))
        }), CURLOPT_HEADERFUNCTION)
        try check(ccurl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, context), CURLOPT_HEADERDATA)
        try set(CURLOPT_CONNECTTIMEOUT_MS, connectTimeout.curlMilliseconds)
        try set(CURLOPT_TIMEOUT_MS, timeout.curlMilliseconds)
        // Lets libcurl refuse early when Content-Length announces too much; bodies of unknown
        // length are caught by receiveBody.
        try set(CURLOPT_MAXFILESIZE_LARGE, offset: curl_off_t(maxResponseSize))
    }

    // MARK: Typed setters

    func set(_ option: CURLoption, _ value: Int) throws(HTTPError) {
        try check(ccurl_easy_setopt_long(easy, option, value), option)
    }

    /// For options taking `curl_off_t` (the `*_LARGE` ones).
    func set(_ option: CURLoption, offset value: curl_off_t) throws(HTTPError) {
        try check(ccurl_easy_setopt_off_t(easy, option, value), option)
    }

    /// libcurl copies string options, so the Swift string may go away after the call.
    /// Trap: `CURLOPT_POSTFIELDS` is the exception (not copied); use ``setBody(_:)``.
    func set(_ option: CURLoption, _ value: String) throws(HTTPError) {
        try check(ccurl_easy_setopt_string(easy, option, value), option)
    }

    /// Sets an option taking a `struct curl_slist *` (`CURLOPT_HTTPHEADER`,
    /// `CURLOPT_MAIL_RCPT`). The list is kept alive until the easy handle is cleaned up or the
    /// option is given another list.
    func set(_ option: CURLoption, list values: [String]) throws(HTTPError) {
        try set(option, listKey: .lines(values)) { values }
    }

    /// Like ``set(_:list:)``, but the lines are only built (by `lines`) when `key` differs from
    /// the key of the list this handle last used for `option`; otherwise that list is set
    /// again. `key` must determine the lines completely.
    func set(_ option: CURLoption, listKey key: ListKey, lines: () -> [String]) throws(HTTPError) {
        let index = lists.firstIndex { $0.option == option }
        if let index, lists[index].key == key {
            try check(ccurl_easy_setopt_slist(easy, option, lists[index].list), option)
            return
        }
        var list: UnsafeMutablePointer<curl_slist>?
        for value in lines() {
            guard let extended = curl_slist_append(list, value) else {
                if let list { curl_slist_free_all(list) }
                throw HTTPError(kind: .other, message: "curl_slist_append: out of memory")
            }
            list = extended
        }
        let code = ccurl_easy_setopt_slist(easy, option, list)
        guard code == CURLE_OK else {
            if let list { curl_slist_free_all(list) }
            try check(code, option)
            return
        }
        // The handle now points at the new list; the old one (if any) is no longer referenced:
        // the handle was reset since it last used it, or this call just replaced it.
        if let index {
            if let old = lists[index].list { curl_slist_free_all(old) }
            lists[index] = CachedList(option: option, key: key, list: list)
        } else {
            lists.append(CachedList(option: option, key: key, list: list))
        }
    }

    /// Sends `bytes` as the request body (and makes the request a POST unless
    /// `CURLOPT_CUSTOMREQUEST` says otherwise).
    ///
    /// The bytes are copied into this handle's reusable buffer, handed to libcurl with
    /// `CURLOPT_POSTFIELDS` (not copied by libcurl; the buffer outlives the transfer).
    /// Traps handled here: the size must be set, or libcurl measures the data with `strlen`;
    /// and the pointer must never be NULL, even for an empty body, or libcurl falls back to its
    /// default read callback, which reads stdin.
    func setBody(_ bytes: [UInt8]) throws(HTTPError) {
        try set(CURLOPT_POSTFIELDSIZE_LARGE, offset: curl_off_t(bytes.count))
        if bytes.count > requestBodyCapacity {
            requestBody.deallocate()
            requestBodyCapacity = max(bytes.count, requestBodyCapacity * 2)
            requestBody = .allocate(byteCount: requestBodyCapacity, alignment: 16)
        }
        bytes.withUnsafeBytes { buffer in
            if let base = buffer.baseAddress, !buffer.isEmpty {
                requestBody.copyMemory(from: base, byteCount: buffer.count)
            }
        }
        try check(ccurl_easy_setopt_pointer(easy, CURLOPT_POSTFIELDS, requestBody), CURLOPT_POSTFIELDS)
    }

    /// Uploads `bytes` (`CURLOPT_UPLOAD`), as SMTP sends its message after `DATA`.
    ///
    /// The bytes are kept by this handle and given to libcurl through a read callback, so
    /// nothing libcurl holds points into Swift storage. libcurl does the protocol's escaping
    /// itself (for SMTP: dot-stuffing and the final `CRLF.CRLF`).
    func setUpload(_ bytes: [UInt8]) throws(HTTPError) {
        upload = bytes
        uploadOffset = 0
        try set(CURLOPT_UPLOAD, 1)
        try set(CURLOPT_INFILESIZE_LARGE, offset: curl_off_t(bytes.count))
        try check(ccurl_easy_setopt_read_callback(easy, CURLOPT_READFUNCTION, { buffer, size, count, context in
            guard let context, let buffer else { return Int(CURL_READFUNC_ABORT) }
            return Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
                .readUpload(into: UnsafeMutableRawBufferPointer(start: buffer, count: size * count))
        }), CURLOPT_READFUNCTION)
        try check(ccurl_easy_setopt_pointer(easy, CURLOPT_READDATA, Unmanaged.passUnretained(self).toOpaque()), CURLOPT_READDATA)
    }

    /// Has every socket libcurl opens for this transfer checked against `policy` first: an
    /// address it does not permit gets no socket (`CURL_SOCKET_BAD`), so libcurl fails the
    /// connection (or tries the host's next address). The check is on the very address about
    /// to be connected to, after name resolution, so a name that resolves differently later
    /// (DNS rebinding) cannot get round it. Proxies are turned off, whatever the environment
    /// says: with one, the address connected to would be the proxy's.
    func vetConnections(_ policy: AddressPolicy) throws(HTTPError) {
        addressPolicy = policy
        try check(ccurl_easy_setopt_opensocket_callback(easy, CURLOPT_OPENSOCKETFUNCTION, { context, purpose, address in
            guard let context, let address else { return CURL_SOCKET_BAD }
            return Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue().openSocket(purpose, address)
        }), CURLOPT_OPENSOCKETFUNCTION)
        try check(ccurl_easy_setopt_pointer(easy, CURLOPT_OPENSOCKETDATA, Unmanaged.passUnretained(self).toOpaque()), CURLOPT_OPENSOCKETDATA)
        // "" (not NULL) is libcurl's "no proxy", overriding http_proxy and friends.
        try set(CURLOPT_PROXY, "")
    }

    /// Drops the response headers unread (set after ``prepare(connectTimeout:timeout:)``), for
    /// callers that need only the status and the body: no callback per header line, no strings.
    func discardResponseHeaders() throws(HTTPError) {
        // Both NULL: with HEADERDATA set, libcurl would hand headers to the write callback.
        try check(ccurl_easy_setopt_write_callback(easy, CURLOPT_HEADERFUNCTION, nil), CURLOPT_HEADERFUNCTION)
        try check(ccurl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, nil), CURLOPT_HEADERDATA)
    }

    /// Marks the transfer as SMTP: the last error reply (4xx, 5xx) the server sends is kept,
    /// and a failure whose response code is that reply's quotes it.
    func usesSMTP() {
        speaksSMTP = true
    }

    /// Call just before removing a transfer that has not completed (cancel, shutdown).
    ///
    /// Why: libcurl's SMTP (7.88 at least) finishes a removed transfer as if the message were
    /// complete: it sends the end-of-data mark, even in the middle of `RCPT TO`, and waits for
    /// the reply in a blocking call, up to the whole timeout. Without recipients set, its done
    /// phase skips that and the connection is simply dropped.
    func prepareForRemoval() {
        guard speaksSMTP else { return }
        _ = ccurl_easy_setopt_slist(easy, CURLOPT_MAIL_RCPT, nil)
    }

    private func check(_ code: CURLcode, _ option: CURLoption) throws(HTTPError) {
        guard code == CURLE_OK else {
            let reason = String(cString: curl_easy_strerror(code))
            throw HTTPError(kind: .invalidRequest, curlCode: Int(code.rawValue),
                            message: "setting curl option \(option.rawValue): \(reason)")
        }
    }

    // MARK: Completion

    /// Resumes the caller (or hands the result to its batch) with `result`. Later calls do nothing.
    func finish(_ result: Result<TransferResult, any Error>) {
        guard let sink else { return }
        self.sink = nil
        sink.deliver(result)
    }

    /// Shapes what libcurl reported for this transfer into its result.
    func result(for code: CURLcode) -> Result<TransferResult, any Error> {
        if exceededSizeLimit || code == CURLE_FILESIZE_EXCEEDED {
            return .failure(HTTPError(kind: .responseTooLarge, curlCode: Int(code.rawValue),
                                      message: "response body larger than \(maxResponseSize) bytes"))
        }
        var status = 0
        _ = ccurl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        if let refusedAddress, code == CURLE_COULDNT_CONNECT {
            return .failure(HTTPError(kind: .blockedAddress, curlCode: Int(code.rawValue),
                                      message: "refused to connect to \(refusedAddress): a blocked address"))
        }
        guard code == CURLE_OK else {
            var error = HTTPError(code: code, detail: String(cString: errorBuffer))
            error.responseCode = status == 0 ? nil : status
            if let lastErrorReply, status != 0, lastErrorReply.hasPrefix(String(status)) {
                error.message += " (server said: \(lastErrorReply))"
            }
            return .failure(error)
        }
        // Moved out, so the caller holds the only reference to the buffers.
        var result = TransferResult(responseCode: status, headers: headers, body: body)
        if status == 429 || status == 503 {
            // libcurl parses Retry-After (seconds or an HTTP date) itself, header callback or not.
            var seconds: curl_off_t = 0
            if ccurl_easy_getinfo_off_t(easy, CURLINFO_RETRY_AFTER, &seconds) == CURLE_OK, seconds > 0 {
                result.retryAfterSeconds = Int64(seconds)
            }
        }
        headers = []
        body = []
        return .success(result)
    }

    // MARK: Callbacks (called by libcurl on the curl thread)

    /// `CURLOPT_OPENSOCKETFUNCTION`: a socket for `address` if the policy permits it.
    private func openSocket(_ purpose: curlsocktype, _ address: UnsafeMutablePointer<curl_sockaddr>) -> curl_socket_t {
        if let addressPolicy {
            var bytes = (UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0),
                         UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0))
            let ip: IPAddress? = withUnsafeMutableBytes(of: &bytes) { buffer in
                let count = ccurl_sockaddr_ip(address, buffer.baseAddress!.assumingMemoryBound(to: UInt8.self))
                return IPAddress(bytes: buffer.prefix(Int(count)))
            }
            // Not an IP socket (nothing else is expected over http and https): refused too.
            guard let ip, addressPolicy.permits(ip) else {
                refusedAddress = ip ?? refusedAddress
                return CURL_SOCKET_BAD
            }
        }
        return ccurl_open_socket(address)
    }

    /// Returning anything but `data.count` makes libcurl abort the transfer.
    private func receiveBody(_ data: UnsafeRawBufferPointer) -> Int {
        guard data.count <= maxResponseSize - body.count else {
            exceededSizeLimit = true
            return 0
        }
        body.append(contentsOf: data)
        return data.count
    }

    /// Copies the next piece of ``upload`` into libcurl's buffer; 0 tells it the upload is done.
    private func readUpload(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let count = min(buffer.count, upload.count - uploadOffset)
        guard count > 0, let destination = buffer.baseAddress else { return 0 }
        upload.withUnsafeBytes { source in
            destination.copyMemory(from: source.baseAddress! + uploadOffset, byteCount: count)
        }
        uploadOffset += count
        return count
    }

    /// libcurl delivers one complete header line per call, CRLF included, for every response
    /// it reads: interim `100 Continue`, redirects, then the final one, then any trailers.
    /// For SMTP the "headers" are the server's reply lines.
    private func receiveHeaderLine(_ data: UnsafeRawBufferPointer) -> Int {
        let line = data.trimmingWhitespace()
        if speaksSMTP, let first = line.first, first == UInt8(ascii: "4") || first == UInt8(ascii: "5") {
            // Not just the last line: libcurl may read a QUIT's "221" after the failure.
            lastErrorReply = String(decoding: line, as: UTF8.self)
        }
        if line.count >= 5, line[line.startIndex] == UInt8(ascii: "H"), line[line.startIndex + 1] == UInt8(ascii: "T"),
           line[line.startIndex + 2] == UInt8(ascii: "T"), line[line.startIndex + 3] == UInt8(ascii: "P"),
           line[line.startIndex + 4] == UInt8(ascii: "/") {
            // A status line starts a new response: keep only the final response's headers.
            headers.removeAll(keepingCapacity: true)
            if headers.capacity == 0 { headers.reserveCapacity(8) }
        } else if let first = data.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
            // Obsolete line folding continues the previous header's value.
            if !headers.isEmpty, !line.isEmpty {
                headers[headers.count - 1].1 += " " + String(decoding: line, as: UTF8.self)
            }
        } else if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            let name = line[..<colon].trimmingWhitespace()
            let value = line[(colon + 1)...].trimmingWhitespace()
            headers.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        return data.count
    }
}

extension Collection where Element == UInt8, SubSequence: BidirectionalCollection {
    /// The bytes without leading and trailing spaces, tabs, CR and LF.
    fileprivate func trimmingWhitespace() -> SubSequence {
        func isSpace(_ byte: UInt8) -> Bool {
            byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n")
        }
        guard let start = firstIndex(where: { !isSpace($0) }) else { return self[endIndex...] }
        let rest = self[start...]
        let end = rest.lastIndex(where: { !isSpace($0) })!
        return rest[...end]
    }
}
