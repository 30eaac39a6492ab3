import Curl
import PushlogMail
import Testing

/// `Mailer` with the TLS settings (`email.tls_ca_file`, `email.tls_verify`,
/// `email.allow_plaintext_auth`) against the real SMTP server.
@Suite("Mailer: TLS settings and AUTH never in clear", .timeLimit(.minutes(2)))
struct MailerTLSTests {
    private let unsubscribe = "https://push.example.org/v1/unsubscribe?user_id=%40alice%3Aexample.org&t=1&sig=0123abcd"

    private func send(_ config: MailerConfig) async throws {
        let client = try CurlClient()
        defer { client.shutdown() }
        try await Mailer(config: config, client: client)
            .send(to: "alice@example.org", subject: "s", text: "t", html: "h", unsubscribeURL: unsubscribe)
    }

    @Test("credentials over smtp:// without require_tls still insist on STARTTLS: a server without it gets no AUTH, no mail")
    func credentialsForceTLS() async throws {
        let server = try await TestSMTPServer.start(auth: ("pushlog", "s3cret"))
        defer { server.stop() }
        let error = await #expect(throws: SMTPError.self) {
            try await send(MailerConfig(smtpURL: server.url, smtpUser: "pushlog", smtpPass: "s3cret", timeout: .seconds(10)))
        }
        #expect(error?.kind == .tls)
        let session = try await server.sessions(count: 1)[0]
        #expect(!session.verbs.contains("AUTH"), "commands sent in clear: \(session.verbs)")
        #expect(server.receivedMessages.isEmpty)
    }

    @Test("allow_plaintext_auth lets AUTH go in clear to a server without STARTTLS")
    func plaintextAllowed() async throws {
        let server = try await TestSMTPServer.start(auth: ("pushlog", "s3cret"))
        defer { server.stop() }
        try await send(MailerConfig(smtpURL: server.url, smtpUser: "pushlog", smtpPass: "s3cret", timeout: .seconds(10),
                                    allowPlaintextAuth: true))
        let mail = try await server.messages(count: 1)[0]
        #expect(mail.authenticatedUser == "pushlog")
        #expect(!mail.tls)
    }

    @Test("tls_ca_file: the server's certificate verifies; without it the same server is refused")
    func caFile() async throws {
        let server = try await TestSMTPServer.start(tls: .startTLS)
        defer { server.stop() }
        let untrusted = await #expect(throws: SMTPError.self) {
            try await send(MailerConfig(smtpURL: server.url, requireTLS: true, timeout: .seconds(10)))
        }
        #expect(untrusted?.kind == .tls)
        try await send(MailerConfig(smtpURL: server.url, requireTLS: true, timeout: .seconds(10), caFile: server.certificatePath))
        let mails = try await server.messages(count: 1)
        #expect(mails.count == 1 && mails[0].tls)
    }

    @Test("tls_verify false: a self-signed certificate is taken without a CA file, over STARTTLS and smtps://")
    func verifyOff() async throws {
        for tls in [TestSMTPServer.TLS.startTLS, .implicit] {
            let server = try await TestSMTPServer.start(tls: tls)
            defer { server.stop() }
            try await send(MailerConfig(smtpURL: server.url, requireTLS: true, timeout: .seconds(10), tlsVerify: false))
            let mail = try await server.messages(count: 1)[0]
            #expect(mail.tls)
        }
    }
}
