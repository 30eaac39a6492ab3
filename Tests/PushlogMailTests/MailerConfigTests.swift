import Curl
import PushlogMail
import Testing

/// The mailer's configuration, checked once at construction, each error naming its key.
@Suite("MailerConfig and Mailer construction")
struct MailerConfigTests {
    private func key(of error: MailError?) -> String? {
        if case .invalidConfig(let key, _) = error { return key }
        return nil
    }

    @Test("the default notif_from gives 'Matrix <noreply@localhost>', %(app)s being the app name")
    func defaultFrom() throws {
        let from = try MailerConfig(smtpURL: "smtp://localhost:25").fromAddress()
        #expect(from.displayName == "Matrix" && from.address == "noreply@localhost")
        let custom = try MailerConfig(smtpURL: "smtp://localhost", notifFrom: "%(app)s 100%% <n@example.org>", appName: "Element").fromAddress()
        #expect(custom.displayName == "Element 100%")
        let bare = try MailerConfig(smtpURL: "smtp://localhost", notifFrom: "n@example.org").fromAddress()
        #expect(bare.displayName == nil && bare.address == "n@example.org")
    }

    @Test("a bad notif_from is refused naming email.notif_from", arguments: [
        "%(app)s <noreply@localhost>\r\nBcc: evil@example.org", "Matrix <a@b, c@d>", "Matrix", "%(app)s <>",
    ])
    func badFrom(notifFrom: String) throws {
        let client = try CurlClient()
        defer { client.shutdown() }
        let error = #expect(throws: MailError.self) {
            _ = try Mailer(config: MailerConfig(smtpURL: "smtp://localhost", notifFrom: notifFrom), client: client)
        }
        #expect(key(of: error) == "email.notif_from")
    }

    @Test("an smtp_url that is not smtp:// or smtps:// is refused naming email.smtp_url", arguments: [
        "http://mail.example.org", "mail.example.org:25", "smtp://", "smtp://:25", "smtp://mail.example.org\r\n:25",
    ])
    func badURL(url: String) throws {
        let client = try CurlClient()
        defer { client.shutdown() }
        let error = #expect(throws: MailError.self) {
            _ = try Mailer(config: MailerConfig(smtpURL: url), client: client)
        }
        #expect(key(of: error) == "email.smtp_url")
    }

    @Test("smtp_pass without smtp_user is refused naming email.smtp_pass")
    func passWithoutUser() throws {
        let client = try CurlClient()
        defer { client.shutdown() }
        let error = #expect(throws: MailError.self) {
            _ = try Mailer(config: MailerConfig(smtpURL: "smtps://mail.example.org:465", smtpPass: "x"), client: client)
        }
        #expect(key(of: error) == "email.smtp_pass")
    }

    @Test("a good configuration builds a mailer whose From is the parsed notif_from")
    func goodConfig() throws {
        let client = try CurlClient()
        defer { client.shutdown() }
        let mailer = try Mailer(config: MailerConfig(smtpURL: "SMTPS://mail.example.org:465", smtpUser: "u", smtpPass: "p",
                                                     requireTLS: true, appName: "Element"), client: client)
        #expect(mailer.from.displayName == "Element")
    }
}
