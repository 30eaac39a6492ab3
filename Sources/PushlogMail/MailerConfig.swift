/// What a ``Mailer`` needs, from the contract's `email.*` keys.
///
/// Plain values: ``Mailer/init(config:client:)`` checks them, once.
public struct MailerConfig: Sendable, Equatable {
    /// `email.smtp_url`: `smtp://host:port` (STARTTLS when offered) or `smtps://host:port`.
    public var smtpURL: String
    /// `email.smtp_user` / `email.smtp_pass`: AUTH credentials, none by default.
    public var smtpUser: String?
    public var smtpPass: String?
    /// `email.require_tls`: refuse to send over `smtp://` unless STARTTLS succeeds. When
    /// false, STARTTLS is still used if the server offers it, and its certificate must then be
    /// trusted (as in Synapse): a server offering STARTTLS with a self-signed certificate
    /// needs ``caFile``.
    public var requireTLS: Bool
    /// `email.notif_from`: the From, `Display Name <addr>` or `addr`; `%(app)s` stands for
    /// ``appName``.
    public var notifFrom: String
    /// `email.app_name`.
    public var appName: String
    /// Time allowed per message, connecting included (not a contract key).
    public var timeout: Duration
    /// `email.tls_ca_file`: certificate authorities to trust instead of the system's.
    public var caFile: String?
    /// `email.tls_verify`: false skips the check of the server's certificate and host name.
    public var tlsVerify: Bool
    /// `email.allow_plaintext_auth`: false (the default) never lets AUTH go out before TLS:
    /// with ``smtpUser`` set, `smtp://` then requires STARTTLS whatever ``requireTLS`` says.
    public var allowPlaintextAuth: Bool

    public static let defaultNotifFrom = "%(app)s <noreply@localhost>"

    public init(
        smtpURL: String,
        smtpUser: String? = nil,
        smtpPass: String? = nil,
        requireTLS: Bool = false,
        notifFrom: String = MailerConfig.defaultNotifFrom,
        appName: String = "Matrix",
        timeout: Duration = .seconds(30),
        caFile: String? = nil,
        tlsVerify: Bool = true,
        allowPlaintextAuth: Bool = false
    ) {
        self.smtpURL = smtpURL
        self.smtpUser = smtpUser
        self.smtpPass = smtpPass
        self.requireTLS = requireTLS
        self.notifFrom = notifFrom
        self.appName = appName
        self.timeout = timeout
        self.caFile = caFile
        self.tlsVerify = tlsVerify
        self.allowPlaintextAuth = allowPlaintextAuth
    }

    /// Whether the connection must be TLS before anything else is said: asked for, or needed
    /// to keep AUTH out of clear text (libcurl would otherwise send AUTH over `smtp://` when the
    /// server offers no STARTTLS).
    var mustUseTLS: Bool { requireTLS || (smtpUser != nil && !allowPlaintextAuth) }

    /// The From mailbox: ``notifFrom`` with `%(app)s` replaced by ``appName`` (and `%%` by
    /// `%`, as Python's `%` formatting does), parsed.
    /// - Throws: ``MailError/invalidConfig(key:reason:)`` naming `email.notif_from`.
    public func fromAddress() throws(MailError) -> MailAddress {
        let text = Self.substitutingApp(in: notifFrom, with: appName)
        do {
            return try MailAddress(parsing: text, field: "from")
        } catch {
            throw MailError.invalidConfig(key: "email.notif_from", reason: "\(String(reflecting: text)) is not \"Name <local@domain>\" or \"local@domain\"")
        }
    }

    /// Checks every value; returns the From mailbox.
    /// - Throws: ``MailError/invalidConfig(key:reason:)`` naming the first bad key.
    func validated() throws(MailError) -> MailAddress {
        let lowered = smtpURL.lowercased()
        let rest: Substring
        if lowered.hasPrefix("smtp://") {
            rest = smtpURL.dropFirst("smtp://".count)
        } else if lowered.hasPrefix("smtps://") {
            rest = smtpURL.dropFirst("smtps://".count)
        } else {
            throw MailError.invalidConfig(key: "email.smtp_url", reason: "must be smtp://host:port or smtps://host:port, got \(String(reflecting: smtpURL))")
        }
        guard let first = rest.first, first != ":", first != "/",
              smtpURL.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw MailError.invalidConfig(key: "email.smtp_url", reason: "no host, or characters a URL cannot hold, in \(String(reflecting: smtpURL))")
        }
        if smtpPass != nil, smtpUser == nil {
            throw MailError.invalidConfig(key: "email.smtp_pass", reason: "set without email.smtp_user")
        }
        for (key, value) in [("email.smtp_user", smtpUser), ("email.smtp_pass", smtpPass)] {
            if let value, value.utf8.contains(0) {
                throw MailError.invalidConfig(key: key, reason: "contains a NUL byte")
            }
        }
        if let caFile, caFile.isEmpty {
            throw MailError.invalidConfig(key: "email.tls_ca_file", reason: "empty path")
        }
        return try fromAddress()
    }

    private static func substitutingApp(in template: String, with app: String) -> String {
        var result = ""
        var rest = Substring(template)
        while let percent = rest.firstIndex(of: "%") {
            result += rest[..<percent]
            let tail = rest[percent...]
            if tail.hasPrefix("%(app)s") {
                result += app
                rest = tail.dropFirst("%(app)s".count)
            } else if tail.hasPrefix("%%") {
                result += "%"
                rest = tail.dropFirst(2)
            } else {
                result += "%"
                rest = tail.dropFirst()
            }
        }
        return result + rest
    }
}
