import CCurl

/// Why a request produced no response.
///
/// An answer with an error status (404, 500, ...) is *not* an `HTTPError`: it is an
/// ``HTTPResponse`` with that status. Task cancellation is not an `HTTPError` either: it throws
/// `CancellationError`, as everywhere else in Swift concurrency.
///
/// The kinds tell a retrying caller what may have happened on the far side:
/// - ``Kind/connectionFailed``: no connection was established, so the request was never sent.
/// - ``Kind/connectionLost``, ``Kind/timeout``: the request may have been received and acted on.
public struct HTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// The total timeout (or the connect timeout) elapsed.
        case timeout
        /// Name resolution, TCP connect or the TLS handshake failed.
        case connectionFailed
        /// The connection broke, or the server closed it, before a complete answer arrived.
        ///
        /// Trap: when a *reused* keep-alive connection closes before a single byte of answer
        /// (the usual idle-close race), libcurl silently re-sends the request, POST included,
        /// on another connection, up to 5 attempts in all. A server that drops requests may
        /// therefore see one request several times before this error is thrown.
        case connectionLost
        /// The response body was larger than the client's `maxResponseSize`.
        case responseTooLarge
        /// The request could not be expressed (bad URL, unsupported scheme, bad header).
        case invalidRequest
        /// The only addresses the host name led to are ones the request's ``AddressPolicy``
        /// does not permit: no connection was attempted.
        case blockedAddress
        /// The client was shut down before the request completed.
        case shutdown
        /// Any other libcurl failure; see ``curlCode`` and ``message``.
        case other
    }

    public var kind: Kind
    /// The `CURLcode` behind the error, or `nil` when it did not come from libcurl.
    public var curlCode: Int?
    /// libcurl's detailed message (its error buffer), or a description of the failure.
    public var message: String
    /// The last response code read before the failure (`CURLINFO_RESPONSE_CODE`: an HTTP
    /// status, or an SMTP reply code), or `nil` when none was read.
    public var responseCode: Int?

    public init(kind: Kind, curlCode: Int? = nil, message: String, responseCode: Int? = nil) {
        self.kind = kind
        self.curlCode = curlCode
        self.message = message
        self.responseCode = responseCode
    }

    public var description: String {
        if let curlCode {
            return "HTTPError.\(kind) (curl \(curlCode)): \(message)"
        }
        return "HTTPError.\(kind): \(message)"
    }

    static let shutDown = HTTPError(kind: .shutdown, message: "the HTTP client was shut down")
}

extension HTTPError {
    /// Classifies a failed transfer. `detail` is the transfer's error buffer, which says more
    /// than `curl_easy_strerror` (e.g. which timeout fired and after how long).
    init(code: CURLcode, detail: String) {
        let message = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        self.init(kind: Self.kind(of: code), curlCode: Int(code.rawValue), message: message)
    }

    private static func kind(of code: CURLcode) -> Kind {
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return .timeout
        case CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT,
             CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM,
             CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR,
             CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS:
            return .connectionFailed
        case CURLE_GOT_NOTHING, CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_PARTIAL_FILE,
             CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_HTTP3, CURLE_QUIC_CONNECT_ERROR:
            return .connectionLost
        case CURLE_FILESIZE_EXCEEDED:
            return .responseTooLarge
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL, CURLE_BAD_FUNCTION_ARGUMENT,
             CURLE_UNKNOWN_OPTION, CURLE_NOT_BUILT_IN:
            return .invalidRequest
        default:
            return .other
        }
    }
}
