import Curl

/// Sends notification emails: composes a ``MailMessage`` and hands it to an SMTP server
/// through the shared curl client.
///
/// Holds no connection of its own: the client's pool keeps the SMTP connection open between
/// messages, and the client's thread runs them beside the HTTP pushes. Safe to share between
/// tasks; concurrent sends run concurrently (up to the client's connections per host).
public final class Mailer: Sendable {
    public let config: MailerConfig
    /// The From mailbox (``MailerConfig/fromAddress()``); its address is the envelope sender.
    public let from: MailAddress
    private let client: CurlClient

    /// Checks the configuration once, so that a bad value stops start-up rather than every mail.
    /// - Throws: ``MailError/invalidConfig(key:reason:)`` naming the bad key
    ///   (`email.smtp_url`, `email.smtp_pass`, `email.notif_from`, …).
    public init(config: MailerConfig, client: CurlClient) throws(MailError) {
        from = try config.validated()
        self.config = config
        self.client = client
    }

    /// Sends one email to `to` and returns once the server has accepted it.
    ///
    /// - Parameters:
    ///   - to: a plain `local@domain` address (a pusher's pushkey).
    ///   - subject: free text; control characters become spaces, non-ASCII is encoded.
    ///   - text, html: the two alternatives of the body.
    ///   - unsubscribeURL: the one-click unsubscribe link.
    /// - Throws: ``MailError/invalidHeader(field:reason:)`` (field `to` or `list-unsubscribe`)
    ///   before anything is sent; `SMTPError` when the server did not accept the message (see
    ///   its `kind` and `isPermanent`); `CancellationError` when the task was cancelled.
    public func send(to: String, subject: String, text: String, html: String, unsubscribeURL: String) async throws {
        let recipient = try MailAddress(address: to, field: "to")
        let message = try MailMessage(from: from, to: recipient, subject: subject, text: text, html: html,
                                      unsubscribeURL: unsubscribeURL)
        try await client.sendMail(SMTPRequest(
            url: config.smtpURL,
            from: from.address,
            recipients: [recipient.address],
            message: message.bytes(),
            username: config.smtpUser,
            password: config.smtpPass,
            requireTLS: config.mustUseTLS,
            caFile: config.caFile,
            verifyPeer: config.tlsVerify,
            // Synapse allows 30 s to connect; here the per-message timeout bounds it.
            connectTimeout: config.timeout,
            timeout: config.timeout
        ))
    }
}
