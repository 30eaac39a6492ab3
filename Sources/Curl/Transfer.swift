import CCurl

/// One libcurl easy handle, the buffers it fills, and the continuation waiting for it.
///
/// Traps:
/// - Lives and dies on the curl thread only (created, configured, completed and deinitialised
///   there); it is deliberately not `Sendable`.
/// - libcurl keeps raw pointers to this object (`CURLOPT_WRITEDATA`, `CURLOPT_HEADERDATA`), to
///   its error buffer and to its `curl_slist`s. They stay valid because the object outlives its
///   easy handle: `deinit` is the only place that calls `curl_easy_cleanup`, and the multi
///   handle removes the easy handle before dropping the transfer.
/// - The continuation is resumed exactly once, by ``finish(_:)``; a transfer dropped unfinished
///   fails its caller rather than leaking a suspended task.
final class Transfer {
    let id: UInt64
    /// The `CURL *`. Valid until `deinit`.
    let easy: UnsafeMutableRawPointer

    private var continuation: TransferContinuation?
    private let maxResponseSize: Int
    private var body: [UInt8] = []
    private var headers: [(String, String)] = []
    /// Set by the write callback when it refuses data for exceeding `maxResponseSize`; libcurl
    /// then reports a generic `CURLE_WRITE_ERROR`, which this turns into `.responseTooLarge`.
    private var exceededSizeLimit = false
    /// Lists handed to libcurl (headers, SMTP recipients): libcurl does not copy them.
    private var lists: [UnsafeMutablePointer<curl_slist>] = []
    /// `CURLOPT_ERRORBUFFER`: libcurl writes its detailed message here.
    private let errorBuffer: UnsafeMutablePointer<CChar>

    /// Returns `nil` if libcurl cannot allocate an easy handle.
    init?(id: UInt64, continuation: TransferContinuation, maxResponseSize: Int) {
        guard let easy = curl_easy_init() else { return nil }
        self.id = id
        self.easy = easy
        self.continuation = continuation
        self.maxResponseSize = maxResponseSize
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
    }

    deinit {
        curl_easy_cleanup(easy)
        // Only after cleanup: libcurl may read the lists until then.
        for list in lists { curl_slist_free_all(list) }
        errorBuffer.deallocate()
        continuation?.resume(throwing: HTTPError(kind: .other, message: "transfer dropped before completion"))
    }

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
    /// `CURLOPT_MAIL_RCPT`). The list is kept alive until the easy handle is cleaned up.
    func set(_ option: CURLoption, list values: [String]) throws(HTTPError) {
        var list: UnsafeMutablePointer<curl_slist>?
        for value in values {
            guard let extended = curl_slist_append(list, value) else {
                if let list { curl_slist_free_all(list) }
                throw HTTPError(kind: .other, message: "curl_slist_append: out of memory")
            }
            list = extended
        }
        if let list { lists.append(list) }
        try check(ccurl_easy_setopt_slist(easy, option, list), option)
    }

    /// Sends `bytes` as the request body (and makes the request a POST unless
    /// `CURLOPT_CUSTOMREQUEST` says otherwise).
    ///
    /// Traps handled here: the size must be set *before* `CURLOPT_COPYPOSTFIELDS`, or libcurl
    /// measures the data with `strlen`; and the pointer must never be NULL, even for an empty
    /// body, or libcurl falls back to its default read callback, which reads stdin.
    func setBody(_ bytes: [UInt8]) throws(HTTPError) {
        try set(CURLOPT_POSTFIELDSIZE_LARGE, offset: curl_off_t(bytes.count))
        var empty: UInt8 = 0
        let code = bytes.withUnsafeBytes { buffer in
            withUnsafeMutablePointer(to: &empty) { emptyPointer in
                // COPYPOSTFIELDS copies now, so these pointers only need to live for the call.
                let pointer = buffer.baseAddress.map { UnsafeMutableRawPointer(mutating: $0) }
                    ?? UnsafeMutableRawPointer(emptyPointer)
                return ccurl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, pointer)
            }
        }
        try check(code, CURLOPT_COPYPOSTFIELDS)
    }

    private func check(_ code: CURLcode, _ option: CURLoption) throws(HTTPError) {
        guard code == CURLE_OK else {
            let reason = String(cString: curl_easy_strerror(code))
            throw HTTPError(kind: .invalidRequest, curlCode: Int(code.rawValue),
                            message: "setting curl option \(option.rawValue): \(reason)")
        }
    }

    // MARK: Completion

    /// Resumes the caller with `result`. Later calls do nothing.
    func finish(_ result: Result<TransferResult, any Error>) {
        guard let continuation else { return }
        self.continuation = nil
        continuation.resume(with: result)
    }

    /// Shapes what libcurl reported for this transfer into its result.
    func result(for code: CURLcode) -> Result<TransferResult, any Error> {
        if exceededSizeLimit || code == CURLE_FILESIZE_EXCEEDED {
            return .failure(HTTPError(kind: .responseTooLarge, curlCode: Int(code.rawValue),
                                      message: "response body larger than \(maxResponseSize) bytes"))
        }
        guard code == CURLE_OK else {
            return .failure(HTTPError(code: code, detail: String(cString: errorBuffer)))
        }
        var status = 0
        _ = ccurl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        return .success(TransferResult(responseCode: status, headers: headers, body: body))
    }

    // MARK: Callbacks (called by libcurl on the curl thread)

    /// Returning anything but `data.count` makes libcurl abort the transfer.
    private func receiveBody(_ data: UnsafeRawBufferPointer) -> Int {
        guard data.count <= maxResponseSize - body.count else {
            exceededSizeLimit = true
            return 0
        }
        body.append(contentsOf: data)
        return data.count
    }

    /// libcurl delivers one complete header line per call, CRLF included, for every response
    /// it reads: interim `100 Continue`, redirects, then the final one, then any trailers.
    private func receiveHeaderLine(_ data: UnsafeRawBufferPointer) -> Int {
        let line = data.trimmingWhitespace()
        if line.starts(with: Array("HTTP/".utf8)) {
            // A status line starts a new response: keep only the final response's headers.
            headers.removeAll()
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
