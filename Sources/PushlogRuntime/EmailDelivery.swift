import Curl
import PushlogCore
import PushlogMail

/// How email pushers mail: the digest templates (PushlogMail's ``DigestRenderer``) and the SMTP
/// ``Mailer``, which `serve` makes with ``smtp(config:client:templates:signer:publicBaseURL:)``
/// when `email.smtp_url` is set. Without one, email pushers are inert.
public struct EmailDelivery: Sendable {
    public var config: EmailConfig
    public var renderer: DigestRenderer
    public var mailer: Mailer
    public var signer: UnsubscribeSigner
    /// The base of unsubscribe links and thumbnails (`email.public_baseurl`), asked when a mail
    /// is made: with `listen` on port 0 the port is known only once the server listens.
    public var publicBaseURL: @Sendable () -> String
    /// Called with each digest and its rendering just before it is sent (tests and benchmarks
    /// watch what the pool mails through it).
    public var willSend: (@Sendable (Digest, RenderedDigest) -> Void)?

    public init(config: EmailConfig, renderer: DigestRenderer, mailer: Mailer, signer: UnsubscribeSigner,
                publicBaseURL: @escaping @Sendable () -> String) {
        self.config = config
        self.renderer = renderer
        self.mailer = mailer
        self.signer = signer
        self.publicBaseURL = publicBaseURL
    }

    /// Email over SMTP with the digest templates: what `serve` runs when `email.smtp_url` is set.
    ///
    /// - Throws: `MailError.invalidConfig` naming the bad `email.*` key.
    public static func smtp(config: EmailConfig, client: CurlClient, templates: EmailTemplates, signer: UnsubscribeSigner,
                            publicBaseURL: @escaping @Sendable () -> String) throws -> EmailDelivery {
        guard let url = config.smtpURL else {
            throw MailError.invalidConfig(key: "email.smtp_url", reason: "is not set")
        }
        let mailer = try Mailer(config: MailerConfig(smtpURL: url, smtpUser: config.smtpUser, smtpPass: config.smtpPass,
                                                     requireTLS: config.requireTLS, notifFrom: config.notifFrom,
                                                     appName: config.appName, caFile: config.tlsCAFile,
                                                     tlsVerify: config.tlsVerify, allowPlaintextAuth: config.allowPlaintextAuth),
                                client: client)
        return EmailDelivery(config: config,
                             renderer: DigestRenderer(templates: templates, maxMessagesPerRoom: config.maxNotificationsPerRoom),
                             mailer: mailer, signer: signer, publicBaseURL: publicBaseURL)
    }

    /// Renders `digest` and mails it to `to`; returns once the SMTP server accepted it.
    /// - Throws: what ``Mailer/send(to:subject:text:html:unsubscribeURL:)`` throws.
    func send(_ digest: Digest, to: String) async throws {
        let mail = renderer.render(digest)
        willSend?(digest, mail)
        try await mailer.send(to: to, subject: mail.subject, text: mail.text, html: mail.html,
                              unsubscribeURL: digest.unsubscribeLink)
    }
}
