import CCurl

/// Why a message was not accepted by the SMTP server.
///
/// ``kind`` says what failed; ``replyCode`` is the server's last reply code, when it sent one;
/// ``isPermanent`` says whether trying the same message again may help.
public struct SMTPError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// No connection: refused, unreachable, or the host name did not resolve. Nothing was sent.
        case connectionFailed
        /// The total timeout (or the connect timeout) elapsed.
        case timeout
        /// TLS did not come up: the handshake failed, the certificate was not trusted, or TLS
        /// was required and the server did not offer STARTTLS (or refused it). Nothing was
        /// sent in cleartext after the greeting and `EHLO`.
        case tls
        /// The server refused the credentials (`535`), or none of its mechanisms could be used.
        case authentication
        /// The server answered an error reply to the greeting, `MAIL FROM`, a `RCPT TO`,
        /// `DATA`, or the message itself: see ``replyCode``.
        case rejected
        /// The connection broke before the server accepted the message.
        case connectionLost
        /// The request could not be expressed (bad URL or address).
        case invalidRequest
        /// The client was shut down before the message was sent.
        case shutdown
        /// Any other libcurl failure; see ``curlCode`` and ``message``.
        case other
    }

    public var kind: Kind
    /// The `CURLcode` behind the error, or `nil` when it did not come from libcurl.
    public var curlCode: Int?
    /// The last SMTP reply code the server sent (`CURLINFO_RESPONSE_CODE`), or `nil`.
    public var replyCode: Int?
    /// libcurl's detailed message and the server's last reply line, or a description.
    public var message: String

    public init(kind: Kind, curlCode: Int? = nil, replyCode: Int? = nil, message: String) {
        self.kind = kind
        self.curlCode = curlCode
        self.replyCode = replyCode
        self.message = message
    }

    /// Whether the same message will fail again however often it is sent: the server refused
    /// it (or the credentials) with a 5xx reply, RFC 5321's permanent negative completion, or
    /// the request is malformed. A 4xx reply, a timeout and connection or TLS trouble are
    /// temporary: a later attempt may succeed.
    public var isPermanent: Bool {
        switch kind {
        case .invalidRequest:
            return true
        case .rejected, .authentication, .tls:
            return (500...599).contains(replyCode ?? 0)
        default:
            return false
        }
    }

    public var description: String {
        var text = "SMTPError.\(kind)"
        var details: [String] = []
        if let replyCode { details.append("reply \(replyCode)") }
        if let curlCode { details.append("curl \(curlCode)") }
        if !details.isEmpty { text += " (\(details.joined(separator: ", ")))" }
        return text + ": " + message
    }
}

extension SMTPError {
    /// Classifies what the curl thread reported for an SMTP transfer.
    init(_ error: HTTPError) {
        let kind: Kind
        switch error.kind {
        case .shutdown:
            kind = .shutdown
        case .invalidRequest:
            kind = .invalidRequest
        default:
            kind = error.curlCode.map { Self.kind(of: CURLcode(rawValue: UInt32($0)), reply: error.responseCode) } ?? .other
        }
        let message = error.kind == .shutdown ? "the client was shut down" : error.message
        self.init(kind: kind, curlCode: error.curlCode, replyCode: error.responseCode, message: message)
    }

    /// libcurl reports a refused `MAIL`, `RCPT` or `DATA` as a send error and a refused message
    /// as a weird reply: the reply code tells those apart from a broken connection.
    private static func kind(of code: CURLcode, reply: Int?) -> Kind {
        let refused = (reply ?? 0) >= 400
        switch code {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return .connectionFailed
        case CURLE_OPERATION_TIMEDOUT:
            return .timeout
        case CURLE_USE_SSL_FAILED, CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION,
             CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR,
             CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CRL_BADFILE:
            return .tls
        case CURLE_LOGIN_DENIED, CURLE_AUTH_ERROR:
            return .authentication
        case CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_WEIRD_SERVER_REPLY,
             CURLE_REMOTE_ACCESS_DENIED, CURLE_PARTIAL_FILE:
            return refused ? .rejected : .connectionLost
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL, CURLE_BAD_FUNCTION_ARGUMENT,
             CURLE_UNKNOWN_OPTION, CURLE_NOT_BUILT_IN:
            return .invalidRequest
        default:
            return refused ? .rejected : .other
        }
    }
}
