import Curl
import Testing
import TestSupport

/// `CurlClient.sendMail` against a real SMTP server (aiosmtpd): envelope, AUTH, TLS, refusals
/// and failures, each as the error a caller can act on.
@Suite("SMTP through the shared curl client", .timeLimit(.minutes(2)))
struct SMTPTransportTests {
    @Test("a plain send arrives with the envelope given and the exact bytes, dot-stuffing undone")
    func plainSendArrives() async throws {
        let server = try await TestSMTPServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }
        // Lines an SMTP client must escape: a lone "." would end DATA early.
        let body = ".starts with a dot\r\n.\r\n..two dots\r\nFrom the start\r\n" + String(repeating: "x", count: 990) + "\r\nend\r\n"
        let message = plainMessage(body: body)

        try await client.sendMail(SMTPRequest(url: server.url, from: "sender@example.org",
                                              recipients: ["alice@example.org", "bob@example.org"], message: message))

        let mail = try await server.messages(count: 1)[0]
        #expect(mail.mailFrom == "sender@example.org")
        #expect(mail.recipients == ["alice@example.org", "bob@example.org"])
        #expect(mail.raw == message)
        #expect(!mail.tls)
        #expect(mail.authenticatedUser == nil)
    }

    @Test("AUTH with the right password is accepted; the server sees the user")
    func authSucceeds() async throws {
        let server = try await TestSMTPServer.start(auth: ("pushlog", "s3cret"))
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        try await client.sendMail(SMTPRequest(url: server.url, from: "sender@example.org", recipients: ["alice@example.org"],
                                              message: plainMessage(body: "hi\r\n"), username: "pushlog", password: "s3cret"))

        let mail = try await server.messages(count: 1)[0]
        #expect(mail.authenticatedUser == "pushlog")
    }

    @Test("AUTH with a wrong password fails as an authentication error (535, permanent) and sends nothing")
    func authFails() async throws {
        let server = try await TestSMTPServer.start(auth: ("pushlog", "s3cret"))
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        let error = await #expect(throws: SMTPError.self) {
            try await client.sendMail(SMTPRequest(url: server.url, from: "sender@example.org", recipients: ["alice@example.org"],
                                                  message: plainMessage(body: "hi\r\n"), username: "pushlog", password: "wrong"))
        }
        #expect(error?.kind == .authentication)
        #expect(error?.replyCode == 535)
        #expect(error?.isPermanent == true)
        let session = try await server.sessions(count: 1)[0]
        #expect(session.verbs.contains("AUTH"))
        #expect(!session.verbs.contains("MAIL"))
        #expect(server.receivedMessages.isEmpty)
    }

    @Test("requireTLS upgrades with STARTTLS before AUTH and MAIL; the server sees TLS")
    func requireTLSUpgrades() async throws {
        let server = try await TestSMTPServer.start(tls: .startTLS, auth: ("pushlog", "s3cret"))
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        try await client.sendMail(SMTPRequest(url: server.url, from: "sender@example.org", recipients: ["alice@example.org"],
                                              message: plainMessage(body: "secret\r\n"), username: "pushlog", password: "s3cret",
                                              requireTLS: true, caFile: server.certificatePath))

        let mail = try await server.messages(count: 1)[0]
        #expect(mail.tls)
        #expect(mail.authenticatedUser == "pushlog")
        let verbs = try await server.sessions(count: 1)[0].verbs
        let startTLS = try #require(verbs.firstIndex(of: "STARTTLS"))
        #expect(verbs.firstIndex(of: "AUTH").map { $0 > startTLS } == true)
        #expect(verbs.firstIndex(of: "MAIL").map { $0 > startTLS } == true)
    }

    @Test("without requireTLS, STARTTLS is still used when the server offers it")
    func opportunisticTLSUpgrades() async throws {
        let server = try await TestSMTPServer.start(tls: .startTLS)
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        try await client.sendMail(SMTPRequest(url: server.url, from: "sender@example.org", recipients: ["alice@example.org"],
                                              message: plainMessage(body: "hi\r\n"), caFile: server.certificatePath))

        #expect(try await server.messages(count: 1)[0].tls)
    }

    @Test("requireTLS against a server without STARTTLS fails as a TLS error before MAIL: nothing goes out in clear")
    func requireTLSRefusesCleartext() async throws {
        let server = try await TestSMTPServer.start(auth: ("pushlog", "s3cret"))
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        let error = await #expect(throws: SMTPError.self) {
            try await client.sendMail(SMTPRequest(url: server.url, from: "sender@example.org", recipients: ["alice@example.org"],
                                                  message: plainMessage(body: "secret\r\n"), username: "pushlog", password: "s3cret",
                                                  requireTLS: true))
        }
        #expect(error?.kind == .tls)
        #expect(error?.isPermanent == false)
        let session = try await server.sessions(count: 1)[0]
        #expect(session.verbs == ["EHLO"] || session.verbs == ["EHLO", "QUIT"], "commands sent in clear: \(session.verbs)")
        #expect(server.receivedMessages.isEmpty)
    }

    @Test("a certificate the client does not trust fails as a TLS error, not a fallback to cleartext")
    func untrustedCertificate() async throws {
        let server = try await TestSMTPServer.start(tls: .startTLS)
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        let error = await #expect(throws: SMTPError.self) {
            try await client.sendMail(SMTPRequest(url: server.url, from: "sender@example.org", recipients: ["first@example.org"],
                                                  message: plainMessage(body: "hi\r\n")))
        }
        #expect(error?.kind == .tls)
        // The same message with the certificate trusted is the first the server receives.
        try await client.sendMail(SMTPRequest(url: server.url, from: "sender@example.org", recipients: ["second@example.org"],
                                              message: plainMessage(body: "hi\r\n"), caFile: server.certificatePath))
        let mails = try await server.messages(count: 1)
        #expect(mails.map(\.recipients) == [["second@example.org"]])
    }

    @Test("smtps:// speaks TLS from the first byte")
    func implicitTLS() async throws {
        let server = try await TestSMTPServer.start(tls: .implicit, auth: ("pushlog", "s3cret"))
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }
        #expect(server.url.hasPrefix("smtps://"))

        try await client.sendMail(SMTPRequest(url: server.url, from: "sender@example.org", recipients: ["alice@example.org"],
                                              message: plainMessage(body: "hi\r\n"), username: "pushlog", password: "s3cret",
                                              caFile: server.certificatePath))

        let mail = try await server.messages(count: 1)[0]
        #expect(mail.tls)
        #expect(mail.authenticatedUser == "pushlog")
    }

    @Test("550 to RCPT TO is a permanent rejection carrying the reply code and the server's words")
    func permanentRecipientRejection() async throws {
        let server = try await TestSMTPServer.start(mode: .rejectRecipient(550))
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        let error = await #expect(throws: SMTPError.self) {
            try await client.sendMail(SMTPRequest(url: server.url, from: "sender@example.org", recipients: ["alice@example.org"],
                                                  message: plainMessage(body: "hi\r\n")))
        }
        #expect(error?.kind == .rejected)
        #expect(error?.replyCode == 550)
        #expect(error?.isPermanent == true)
        #expect(error?.message.contains("recipient refused by the test server") == true, "\(String(describing: error))")
    }

    @Test("451 to RCPT TO is a temporary rejection")
    func temporaryRecipientRejection() async throws {
        let server = try await TestSMTPServer.start(mode: .rejectRecipient(451))
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        let error = await #expect(throws: SMTPError.self) {
            try await client.sendMail(SMTPRequest(url: server.url, from: "sender@example.org", recipients: ["alice@example.org"],
                                                  message: plainMessage(body: "hi\r\n")))
        }
        #expect(error?.kind == .rejected)
        #expect(error?.replyCode == 451)
        #expect(error?.isPermanent == false)
    }

    @Test("a refusal of the message itself (after the data) is a rejection too: 554 permanent, 452 temporary")
    func dataRejection() async throws {
        let server = try await TestSMTPServer.start(mode: .rejectData(554))
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }
        let request = SMTPRequest(url: server.url, from: "sender@example.org", recipients: ["alice@example.org"],
                                  message: plainMessage(body: "hi\r\n"))

        let permanent = await #expect(throws: SMTPError.self) { try await client.sendMail(request) }
        #expect(permanent?.kind == .rejected)
        #expect(permanent?.replyCode == 554)
        #expect(permanent?.isPermanent == true)

        try await server.setMode(.rejectData(452))
        let temporary = await #expect(throws: SMTPError.self) { try await client.sendMail(request) }
        #expect(temporary?.kind == .rejected)
        #expect(temporary?.replyCode == 452)
        #expect(temporary?.isPermanent == false)

        // The failed exchanges closed their connections; the next one starts clean.
        try await server.setMode(.accept)
        try await client.sendMail(request)
        #expect(try await server.messages(count: 1).count == 1)
    }

    @Test("nothing listening is a connection error, temporary, with no reply code")
    func serverDown() async throws {
        let client = try CurlClient()
        defer { client.shutdown() }

        let error = await #expect(throws: SMTPError.self) {
            try await client.sendMail(SMTPRequest(url: "smtp://127.0.0.1:\(closedPort())", from: "sender@example.org",
                                                  recipients: ["alice@example.org"], message: plainMessage(body: "hi\r\n")))
        }
        #expect(error?.kind == .connectionFailed)
        #expect(error?.replyCode == nil)
        #expect(error?.isPermanent == false)
    }

    @Test("a server slower than the timeout is a timeout error")
    func slowServerTimesOut() async throws {
        let server = try await TestSMTPServer.start(mode: .slow(milliseconds: 5000))
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        let clock = ContinuousClock()
        let started = clock.now
        let error = await #expect(throws: SMTPError.self) {
            try await client.sendMail(SMTPRequest(url: server.url, from: "sender@example.org", recipients: ["alice@example.org"],
                                                  message: plainMessage(body: "hi\r\n"), timeout: .milliseconds(800)))
        }
        #expect(error?.kind == .timeout)
        #expect(error?.isPermanent == false)
        #expect(clock.now - started < .seconds(4))
    }

    @Test("an address with CR, LF or angle brackets is refused before any connection")
    func envelopeInjectionRefused() async throws {
        let server = try await TestSMTPServer.start()
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        for (from, to) in [("sender@example.org", "alice@example.org>\r\nRCPT TO:<evil@example.org"),
                           ("sender@example.org\r\nRCPT TO:<evil@example.org>", "alice@example.org"),
                           ("sender@example.org", "<alice@example.org>")] {
            let error = await #expect(throws: SMTPError.self) {
                try await client.sendMail(SMTPRequest(url: server.url, from: from, recipients: [to],
                                                      message: plainMessage(body: "hi\r\n")))
            }
            #expect(error?.kind == .invalidRequest)
        }
        // A good message afterwards is the first one the server sees.
        try await client.sendMail(SMTPRequest(url: server.url, from: "sender@example.org", recipients: ["alice@example.org"],
                                              message: plainMessage(body: "after\r\n")))
        let mails = try await server.messages(count: 1)
        #expect(mails.count == 1)
        #expect(mails[0].recipients == ["alice@example.org"])
    }

    @Test("a URL that is not smtp:// or smtps:// is refused")
    func otherSchemesRefused() async throws {
        let client = try CurlClient()
        defer { client.shutdown() }
        for url in ["http://127.0.0.1:1", "file:///etc/passwd", "smtp://host\r\n:25"] {
            let error = await #expect(throws: SMTPError.self) {
                try await client.sendMail(SMTPRequest(url: url, from: "sender@example.org", recipients: ["alice@example.org"],
                                                      message: plainMessage(body: "hi\r\n")))
            }
            #expect(error?.kind == .invalidRequest)
        }
    }

    @Test("fifty concurrent sends over one client all arrive, each once, beside failing HTTP requests")
    func concurrentSends() async throws {
        let server = try await TestSMTPServer.start()
        defer { server.stop() }
        let client = try CurlClient(maxConnectionsPerHost: 8)
        defer { client.shutdown() }
        let deadPort = closedPort()

        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<50 {
                group.addTask {
                    try await client.sendMail(SMTPRequest(url: server.url, from: "sender@example.org",
                                                          recipients: ["user\(index)@example.org"],
                                                          message: plainMessage(subject: "n\(index)", body: "body \(index)\r\n")))
                }
                if index % 10 == 0 {
                    // HTTP transfers on the same handles in between: recycled handles must not
                    // carry SMTP options into HTTP or back.
                    group.addTask {
                        await #expect(throws: HTTPError.self) {
                            _ = try await client.post("http://127.0.0.1:\(deadPort)/", body: [1, 2, 3], timeout: .seconds(5))
                        }
                    }
                }
            }
            try await group.waitForAll()
        }

        let mails = try await server.messages(count: 50)
        #expect(mails.count == 50)
        #expect(Set(mails.flatMap(\.recipients)) == Set((0..<50).map { "user\($0)@example.org" }))
        for mail in mails {
            let index = mail.recipients[0].dropFirst("user".count).prefix { $0.isNumber }
            #expect(mail.raw == plainMessage(subject: "n\(index)", body: "body \(index)\r\n"))
        }
    }

    @Test("cancelling the sending task throws CancellationError and closes the connection before DATA")
    func cancellation() async throws {
        let server = try await TestSMTPServer.start(mode: .slowRecipient(milliseconds: 10_000))
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        let task = Task {
            try await client.sendMail(SMTPRequest(url: server.url, from: "sender@example.org", recipients: ["alice@example.org"],
                                                  message: plainMessage(body: "hi\r\n")))
        }
        try await server.waitForEvent("delaying")
        let clock = ContinuousClock()
        let cancelled = clock.now
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(clock.now - cancelled < .seconds(5))
        let session = try await server.sessions(count: 1)[0]
        #expect(session.verbs.last == "RCPT")
        #expect(server.receivedMessages.isEmpty)
    }

    @Test("a mail server slow to accept a message does not hold up HTTP requests on the same client")
    func slowMailDoesNotStallHTTP() async throws {
        let server = try await TestSMTPServer.start(mode: .slow(milliseconds: 3000))
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        let mail = Task {
            try await client.sendMail(SMTPRequest(url: server.url, from: "sender@example.org", recipients: ["alice@example.org"],
                                                  message: plainMessage(body: "hi\r\n")))
        }
        // libcurl waits for the answer to the end of the message in a blocking call.
        try await server.waitForEvent("delaying")
        let clock = ContinuousClock()
        let started = clock.now
        await #expect(throws: HTTPError.self) {
            _ = try await client.post("http://127.0.0.1:\(closedPort())/", body: [], timeout: .seconds(10))
        }
        #expect(clock.now - started < .seconds(1), "an HTTP request waited for the mail server")
        try await mail.value
    }

    @Test("after a timeout the next message goes through: the timed-out connection is not reused")
    func sendAfterTimeout() async throws {
        let server = try await TestSMTPServer.start(mode: .slow(milliseconds: 3000))
        defer { server.stop() }
        let client = try CurlClient()
        defer { client.shutdown() }

        await #expect(throws: SMTPError.self) {
            try await client.sendMail(SMTPRequest(url: server.url, from: "sender@example.org", recipients: ["first@example.org"],
                                                  message: plainMessage(body: "first\r\n"), timeout: .milliseconds(500)))
        }
        try await server.setMode(.accept)
        try await client.sendMail(SMTPRequest(url: server.url, from: "sender@example.org", recipients: ["second@example.org"],
                                              message: plainMessage(body: "second\r\n")))
        let mails = try await server.messages(count: 1)
        #expect(mails.last?.recipients == ["second@example.org"])
    }

    @Test("after shutdown, sendMail fails with a shutdown error")
    func afterShutdown() async throws {
        let client = try CurlClient()
        client.shutdown()
        let error = await #expect(throws: SMTPError.self) {
            try await client.sendMail(SMTPRequest(url: "smtp://127.0.0.1:\(closedPort())", from: "sender@example.org",
                                                  recipients: ["alice@example.org"], message: plainMessage(body: "hi\r\n")))
        }
        #expect(error?.kind == .shutdown)
    }
}
