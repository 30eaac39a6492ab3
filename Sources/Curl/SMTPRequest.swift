import CCurl

/// One message to hand to an SMTP server: where, as whom, to whom, and the message itself.
///
/// ``CurlClient/sendMail(_:)`` sends it: connect (TLS at once for `smtps://`; STARTTLS on
/// `smtp://` when offered, or required with ``requireTLS``), `EHLO`, `AUTH` when a
/// ``username`` is given and the server offers a mechanism, `MAIL FROM`, `RCPT TO` for each
/// recipient, `DATA` with ``message``. libcurl dot-stuffs the message (a line starting with `.`
/// gets a second one) and ends it with `CRLF.CRLF`, so any bytes may be sent.
///
/// Traps:
/// - The envelope (``from``, ``recipients``) is what the server delivers to; the message's
///   own `From:`/`To:` headers are not looked at.
/// - Opportunistic TLS (``requireTLS`` false) still verifies the server's certificate once the
///   server offers STARTTLS: a server with a certificate the client does not trust fails with
///   ``SMTPError/Kind/tls`` rather than falling back to cleartext.
/// - Every message gets a connection of its own, closed (`QUIT`) after it. libcurl would
///   otherwise keep a connection whose transfer timed out while the server was still
///   answering the message, and the next message on it would read that late answer as the
///   reply to its own `MAIL FROM` and fail.
public struct SMTPRequest: Sendable {
    /// `smtp://host:port` or `smtps://host:port` (implicit TLS). A path, if any, is the
    /// domain sent with `EHLO` (default `localhost`).
    public var url: String
    /// For `AUTH` (PLAIN or LOGIN, whichever the server offers); `nil` sends no `AUTH`.
    public var username: String?
    public var password: String?
    /// On `smtp://`: `true` fails unless the server offers STARTTLS and the upgrade succeeds
    /// (`CURLUSESSL_ALL`); `false` upgrades when the server offers it (`CURLUSESSL_TRY`).
    public var requireTLS: Bool
    /// A PEM file of the certificate authorities to trust instead of the system's
    /// (`CURLOPT_CAINFO`); for a server with a private CA or a self-signed certificate.
    public var caFile: String?
    /// false: the server's certificate chain and host name are not checked
    /// (`CURLOPT_SSL_VERIFYPEER`/`VERIFYHOST` 0): the connection is encrypted but anyone on the
    /// path can pose as the server. For a local MTA with a certificate of its own.
    public var verifyPeer: Bool
    /// The envelope sender (`MAIL FROM`), a bare address such as `noreply@example.org`.
    public var from: String
    /// The envelope recipients (`RCPT TO`), bare addresses; at least one.
    public var recipients: [String]
    /// The complete RFC 5322 message, header and body, lines ending in CRLF.
    public var message: [UInt8]
    /// Time allowed to connect (TCP and any implicit TLS); `nil` uses the client's.
    public var connectTimeout: Duration?
    /// Time allowed for the whole exchange, connecting included. After a timeout libcurl
    /// still sends `QUIT` and waits for its reply, at most this long again (in whole seconds).
    public var timeout: Duration

    public init(
        url: String,
        from: String,
        recipients: [String],
        message: [UInt8],
        username: String? = nil,
        password: String? = nil,
        requireTLS: Bool = false,
        caFile: String? = nil,
        verifyPeer: Bool = true,
        connectTimeout: Duration? = nil,
        timeout: Duration = .seconds(30)
    ) {
        self.url = url
        self.from = from
        self.recipients = recipients
        self.message = message
        self.username = username
        self.password = password
        self.requireTLS = requireTLS
        self.caFile = caFile
        self.verifyPeer = verifyPeer
        self.connectTimeout = connectTimeout
        self.timeout = timeout
    }

    /// Refuses, before any I/O, what libcurl would pass on unchecked: an address with CR or
    /// LF would let its author add SMTP commands (another `RCPT TO`, say).
    func validate() throws(SMTPError) {
        let lowered = url.lowercased()
        guard lowered.hasPrefix("smtp://") || lowered.hasPrefix("smtps://"),
              url.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw SMTPError(kind: .invalidRequest, message: "the SMTP URL must be smtp://host:port or smtps://host:port, got \(String(reflecting: url))")
        }
        try Self.validateAddress(from, role: "sender")
        guard !recipients.isEmpty else {
            throw SMTPError(kind: .invalidRequest, message: "no recipient")
        }
        for recipient in recipients {
            try Self.validateAddress(recipient, role: "recipient")
        }
        for (name, value) in [("username", username), ("password", password)] {
            if let value, value.utf8.contains(0) {
                throw SMTPError(kind: .invalidRequest, message: "the \(name) contains a NUL byte")
            }
        }
    }

    /// An envelope address: printable ASCII without spaces or angle brackets (the brackets
    /// are added here). Its syntax beyond that is the server's to judge.
    private static func validateAddress(_ address: String, role: String) throws(SMTPError) {
        guard !address.isEmpty,
              address.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "<") && $0 != UInt8(ascii: ">") }) else {
            throw SMTPError(kind: .invalidRequest, message: "invalid \(role) address \(String(reflecting: address))")
        }
    }

    /// Runs on the curl thread, after ``Transfer/prepare(connectTimeout:timeout:)``.
    func configure(_ transfer: Transfer) throws(HTTPError) {
        try transfer.set(CURLOPT_PROTOCOLS_STR, "smtp,smtps")
        try transfer.set(CURLOPT_URL, url)
        if let username { try transfer.set(CURLOPT_USERNAME, username) }
        if let password { try transfer.set(CURLOPT_PASSWORD, password) }
        let level = requireTLS ? CURLUSESSL_ALL : CURLUSESSL_TRY
        try transfer.set(CURLOPT_USE_SSL, Int(level.rawValue))
        if let caFile { try transfer.set(CURLOPT_CAINFO, caFile) }
        if !verifyPeer {
            try transfer.set(CURLOPT_SSL_VERIFYPEER, 0)
            try transfer.set(CURLOPT_SSL_VERIFYHOST, 0)
        }
        if let connectTimeout { try transfer.set(CURLOPT_CONNECTTIMEOUT_MS, connectTimeout.curlMilliseconds) }
        try transfer.set(CURLOPT_FORBID_REUSE, 1)
        // Bounds each wait for a reply, including the QUIT that closes the connection after a
        // timeout (libcurl's default is 120 s there, and the wait blocks the mail thread).
        try transfer.set(CURLOPT_SERVER_RESPONSE_TIMEOUT, max(1, (timeout.curlMilliseconds + 999) / 1000))
        try transfer.set(CURLOPT_MAIL_FROM, "<\(from)>")
        try transfer.set(CURLOPT_MAIL_RCPT, list: recipients.map { "<\($0)>" })
        try transfer.setUpload(message)
        transfer.usesSMTP()
    }
}
