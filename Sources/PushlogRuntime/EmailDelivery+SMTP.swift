import Curl
import Logging
import PushlogCore
import PushlogMail

extension EmailDelivery {
    /// Email over SMTP with the digest templates: what `serve` runs when `email.smtp_url` is set.
    ///
    /// - Throws: `MailError.invalidConfig` naming the bad `email.*` key.
    public static func smtp(config: EmailConfig, client: HTTPClient, templates: EmailTemplates, signer: UnsubscribeSigner,
                            publicBaseURL: @escaping @Sendable () -> String) throws -> EmailDelivery {
        guard let url = config.smtpURL else {
            throw MailError.invalidConfig(key: "email.smtp_url", reason: "is not set")
        }
        let mailer = try Mailer(config: MailerConfig(smtpURL: url, smtpUser: config.smtpUser, smtpPass: config.smtpPass,
                                                     requireTLS: config.requireTLS, notifFrom: config.notifFrom,
                                                     appName: config.appName, caFile: config.tlsCAFile,
                                                     tlsVerify: config.tlsVerify, allowPlaintextAuth: config.allowPlaintextAuth),
                                client: client)
        let renderer = DigestRenderer(templates: templates, maxMessagesPerRoom: config.maxNotificationsPerRoom)
        return EmailDelivery(
            config: config, signer: signer,
            publicBaseURL: publicBaseURL,  // the link and the thumbnails each add a missing "/"
            compose: { request in
                let digest = Digest(
                    userID: request.userID, appName: config.appName, clientBaseURL: config.clientBaseURL,
                    publicBaseURL: publicBaseURL(), unsubscribeLink: request.unsubscribeLink, now: request.now,
                    reason: Digest.Reason(roomID: request.reason.roomID, receivedAt: request.reason.receivedAt,
                                          delayBeforeMail: config.delayBeforeMailMS,
                                          lastSentTS: request.reason.lastSentTS, throttleMS: request.reason.throttleMS),
                    notifications: request.notifications, omittedPerRoom: request.omittedPerRoom)
                let rendered = renderer.render(digest)
                return ComposedEmail(subject: rendered.subject, text: rendered.text, html: rendered.html)
            },
            send: { to, mail, link in
                try await mailer.send(to: to, subject: mail.subject, text: mail.text, html: mail.html, unsubscribeURL: link)
            })
    }
}
