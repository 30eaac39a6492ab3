/// A complete HTTP answer, whatever its status.
///
/// `headers` are those of the final response only (an interim `100 Continue` block is
/// dropped), in the order received, with names as the server spelled them: look them up with
/// ``header(_:)``, which ignores case. The body is exactly the bytes received; it is never
/// decoded, whatever `Content-Type` says (Sygnal answers JSON as `text/html`).
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// The `Retry-After` of a 429 or 503 answer, in seconds from now (libcurl parses both forms,
    /// seconds and HTTP date, whether or not the headers are collected); nil otherwise.
    public var retryAfterSeconds: Int64?

    public init(status: Int, headers: [(String, String)], body: [UInt8], retryAfterSeconds: Int64? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.retryAfterSeconds = retryAfterSeconds
    }

    /// The value of the first header called `name`, compared case-insensitively (ASCII).
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.0.lowercased() == wanted }?.1
    }
}
