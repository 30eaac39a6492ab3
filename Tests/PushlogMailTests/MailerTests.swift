import Curl
import PushlogMail
import Testing

/// `Mailer` against a real SMTP server; what arrives is parsed by Python's `email` package, an
/// independent reader of MIME.
@Suite("Mailer end to end", .timeLimit(.minutes(2)))
struct MailerTests {
    private let unsubscribe = "https://push.example.org/v1/unsubscribe?user=%40alice%3Aexample.org&sig=0123abcd"

    private func mailer(_ server: TestSMTPServer, _ client: CurlClient, appName: String = "Matrix",
                        user: String? = nil, password: String? = nil, requireTLS: Bool = false) throws -> Mailer {
        try Mailer(config: MailerConfig(smtpURL: server.url, smtpUser: user, smtpPass: password, requireTLS: requireTLS,
                                        appName: appName, timeout: .seconds(10), caFile: server.certificatePath),
                   client: client)
    }

    /// Python hands back the decoded body with the CRLF line breaks that were sent.
    private func lf(_ text: String) -> String {
        text.replacingOccurrences(of: "\r\n", with: "\n")
    }

    @Test("a mail arrives as multipart/alternative, text then HTML, with both bodies, the subject and the headers intact")
    func roundTrip() async throws {
        let server = try await TestSMTPServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }
        let subject = "Jörg: 3 ungelesene Nachrichten in „Mittagessen“ 🍝 " + String(repeating: "und noch mehr Text ", count: 8)
        let longLine = String(repeating: "Ünïcödé and ASCII, a long line without breaks. ", count: 40)
        let text = "Hello Jörg 👋\n.starts with a dot\n.\n..\nFrom the start of a line\n\(longLine)\ntrailing space \ntab\tin\n= sign =3D\nend"
        let html = "<html><body>\n<p>Hello Jörg 👋</p>\n.\n<p>\(longLine)</p>\nFrom here\n</body></html>\n"

        try await mailer(server, client).send(to: "alice@example.org", subject: subject, text: text, html: html,
                                              unsubscribeURL: unsubscribe)

        let mail = try await server.messages(count: 1)[0]
        #expect(mail.mailFrom == "noreply@localhost")
        #expect(mail.recipients == ["alice@example.org"])
        #expect(mail.defects == [])
        #expect(mail.contentType == "multipart/alternative")
        #expect(mail.parts.map(\.contentType) == ["text/plain", "text/html"])
        #expect(mail.parts.map(\.charset) == ["utf-8", "utf-8"])
        #expect(mail.parts.map(\.cte) == ["quoted-printable", "quoted-printable"])
        #expect(lf(mail.parts[0].body) == text)
        #expect(lf(mail.parts[1].body) == html)
        #expect(mail.header("Subject") == subject)
        #expect(mail.header("From") == "Matrix <noreply@localhost>")
        #expect(mail.header("To") == "alice@example.org")
        #expect(mail.header("Auto-Submitted") == "auto-generated")
        #expect(mail.header("X-Auto-Response-Suppress") == "All")
        #expect(mail.header("List-Unsubscribe") == "<\(unsubscribe)>")
        #expect(mail.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click")
        #expect(mail.header("MIME-Version") == "1.0")
        #expect(mail.header("Message-ID")?.hasSuffix("@localhost>") == true)
        #expect(mail.header("Date") != nil)
        #expect(!mail.raw.split(separator: 0x0A).contains { $0.count > 998 })
    }

    @Test("a non-ASCII app name becomes an encoded display name that reads back exactly")
    func encodedDisplayName() async throws {
        let server = try await TestSMTPServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        try await mailer(server, client, appName: "Élément, the “app”").send(to: "alice@example.org", subject: "s", text: "t",
                                                                            html: "h", unsubscribeURL: unsubscribe)

        let mail = try await server.messages(count: 1)[0]
        #expect(mail.header("From") == "\"Élément, the “app”\" <noreply@localhost>")
        #expect(mail.defects == [])
    }

    @Test("CRLF + Bcc in the subject or the display name adds no Bcc header and no recipient")
    func injectionThroughFreeText() async throws {
        let server = try await TestSMTPServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        try await mailer(server, client, appName: "Bob\r\nBcc: evil@example.org").send(
            to: "alice@example.org", subject: "Hi\r\nBcc: evil@example.org", text: "t", html: "h", unsubscribeURL: unsubscribe)

        let mail = try await server.messages(count: 1)[0]
        #expect(mail.recipients == ["alice@example.org"])
        #expect(mail.headerValues("Bcc").isEmpty)
        #expect(mail.headers.map(\.0).allSatisfy { $0.lowercased() != "bcc" })
        #expect(mail.header("Subject") == "Hi  Bcc: evil@example.org")
        #expect(!String(decoding: mail.raw, as: UTF8.self).contains("\r\nBcc:"))
    }

    @Test("a To with CRLF, a comma or brackets is refused naming the field, and nothing is sent", arguments: [
        "alice@example.org\r\nBcc: evil@example.org", "alice@example.org, evil@example.org", "Alice <alice@example.org>",
    ])
    func injectionThroughTo(to: String) async throws {
        let server = try await TestSMTPServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }
        let mailer = try mailer(server, client)

        let error = await #expect(throws: MailError.self) {
            try await mailer.send(to: to, subject: "s", text: "t", html: "h", unsubscribeURL: self.unsubscribe)
        }
        guard case .invalidHeader(field: "to", _)? = error else {
            Issue.record("expected invalidHeader(field: \"to\"), got \(String(describing: error))")
            return
        }
        // A good mail afterwards is the first and only one the server sees.
        try await mailer.send(to: "bob@example.org", subject: "s", text: "t", html: "h", unsubscribeURL: unsubscribe)
        let mails = try await server.messages(count: 1)
        #expect(mails.map(\.recipients) == [["bob@example.org"]])
    }

    @Test("with smtp_user, smtp_pass and require_tls the mail goes over STARTTLS, authenticated")
    func authenticatedTLS() async throws {
        let server = try await TestSMTPServer.start(tls: .startTLS, auth: ("pushlog", "pa55"))
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        try await mailer(server, client, user: "pushlog", password: "pa55", requireTLS: true)
            .send(to: "alice@example.org", subject: "s", text: "t", html: "h", unsubscribeURL: unsubscribe)

        let mail = try await server.messages(count: 1)[0]
        #expect(mail.tls)
        #expect(mail.authenticatedUser == "pushlog")
    }

    @Test("a permanent refusal reaches the caller as a permanent SMTPError")
    func refusal() async throws {
        let server = try await TestSMTPServer.start(mode: .rejectRecipient(550))
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        let error = await #expect(throws: SMTPError.self) {
            try await mailer(server, client).send(to: "alice@example.org", subject: "s", text: "t", html: "h",
                                                  unsubscribeURL: self.unsubscribe)
        }
        #expect(error?.kind == .rejected)
        #expect(error?.isPermanent == true)
    }

    @Test("fifty concurrent mails over one client all arrive, each to its own recipient")
    func concurrentMails() async throws {
        let server = try await TestSMTPServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }
        let mailer = try mailer(server, client)

        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<50 {
                group.addTask {
                    try await mailer.send(to: "user\(index)@example.org", subject: "n\(index)", text: "text \(index)",
                                          html: "<p>\(index)</p>", unsubscribeURL: self.unsubscribe)
                }
            }
            try await group.waitForAll()
        }

        let mails = try await server.messages(count: 50)
        #expect(mails.count == 50)
        for mail in mails {
            let index = try #require(mail.header("Subject")?.dropFirst())
            #expect(mail.recipients == ["user\(index)@example.org"])
            #expect(lf(mail.parts[0].body) == "text \(index)")
        }
    }
}
