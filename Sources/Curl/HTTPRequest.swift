import CCurl

/// An HTTP request, and how it configures an easy handle on the curl thread.
struct HTTPRequest: Sendable {
    var method: String
    var url: String
    var body: [UInt8]
    var headers: [String: String]
    /// False: the answer's headers are not collected (``HTTPResponse/headers`` stays empty).
    var collectsHeaders = true
    /// Set: only addresses it permits are connected to, and no proxy is used
    /// (``Transfer/vetConnections(_:)``).
    var addressPolicy: AddressPolicy?

    /// Checks what libcurl would pass through unchecked: a method or header containing CR/LF
    /// would let a caller inject headers or requests, so it is refused before any I/O.
    func validate() throws(HTTPError) {
        guard !method.isEmpty, method.utf8.allSatisfy(Self.isTokenByte) else {
            throw HTTPError(kind: .invalidRequest, message: "invalid HTTP method \(String(reflecting: method))")
        }
        for (name, value) in headers {
            guard !name.isEmpty, name.utf8.allSatisfy(Self.isTokenByte) else {
                throw HTTPError(kind: .invalidRequest, message: "invalid header name \(String(reflecting: name))")
            }
            guard !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
                throw HTTPError(kind: .invalidRequest, message: "invalid value for header \(name)")
            }
        }
    }

    /// Runs on the curl thread, after ``Transfer/prepare(connectTimeout:timeout:)``.
    func configure(_ transfer: Transfer) throws(HTTPError) {
        // Only HTTP(S): the URL may come from a pusher registered by any user, and libcurl
        // would otherwise also speak file://, gopher://, and so on.
        try transfer.set(CURLOPT_PROTOCOLS_STR, "http,https")
        try transfer.set(CURLOPT_URL, url)
        // Said, not assumed: a redirect would lead the request to a URL nobody checked.
        try transfer.set(CURLOPT_FOLLOWLOCATION, 0)
        if let addressPolicy { try transfer.vetConnections(addressPolicy) }
        if !collectsHeaders { try transfer.discardResponseHeaders() }
        // HTTP/2 when TLS ALPN offers it, so several requests to one gateway share one
        // connection; HTTP/1.1 otherwise (cleartext h2c is not attempted).
        try transfer.set(CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))
        if Self.isHTTPS(url) {
            // Prefer waiting for a connection that may multiplex over opening another one.
            // Only over TLS: ALPN settles the question at handshake. Over cleartext libcurl
            // learns "no multiplexing" only from the first response's status line, so a slow
            // first answer would hold back every concurrent request to that host.
            try transfer.set(CURLOPT_PIPEWAIT, 1)
        }

        switch method {
        case "GET" where body.isEmpty:
            try transfer.set(CURLOPT_HTTPGET, 1)
        case "HEAD" where body.isEmpty:
            try transfer.set(CURLOPT_NOBODY, 1)
        default:
            if method == "POST" || !body.isEmpty {
                try transfer.setBody(body)
            }
            if method != "POST" {
                try transfer.set(CURLOPT_CUSTOMREQUEST, method)
            }
        }

        // Most requests of a client carry the same headers (Content-Type, say): the handle
        // keeps the list it built last time and sets it again when the headers are the same.
        let headers = self.headers
        try transfer.set(CURLOPT_HTTPHEADER, listKey: .fields(headers)) {
            var lines: [String] = []
            lines.reserveCapacity(headers.count + 1)
            for (name, value) in headers {
                // libcurl reads "Name:" as "remove this header"; "Name;" sends it empty.
                lines.append(value.isEmpty ? "\(name);" : "\(name): \(value)")
            }
            if !headers.keys.contains(where: { $0.lowercased() == "expect" }) {
                // libcurl adds "Expect: 100-continue" to larger bodies and then waits for a
                // "100 Continue" that many servers never send: one wasted round trip or a stall.
                lines.append("Expect:")
            }
            return lines
        }
    }

    /// Whether `url` starts with `https://`, ignoring case.
    static func isHTTPS(_ url: String) -> Bool {
        var scheme = "https://".utf8.makeIterator()
        for byte in url.utf8 {
            guard let expected = scheme.next() else { return true }
            // ASCII letters only differ from their upper case in bit 0x20.
            guard byte == expected || (expected >= UInt8(ascii: "a") && expected <= UInt8(ascii: "z") && byte == expected ^ 0x20) else {
                return false
            }
        }
        return scheme.next() == nil
    }

    /// RFC 9110 token characters (method and header names).
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}
