import Curl
import Foundation
import PushlogCore
import Testing
import TestSupport

/// `pushlog serve` (the real binary) with the `email.*` TLS and AUTH keys, against the real SMTP
/// server: what it refuses at start-up, and what reaches the server when it starts.
@Suite("pushlog serve: SMTP TLS settings and AUTH over plaintext", .serialized)
struct ServeEmailTLSTests {
    static let user = "@alice:example.org"

    /// Runs serve with `environment` until it exits by itself; its status and stderr.
    func serveToExit(_ environment: [String: String]) throws -> (status: Int32, stderr: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-tls-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try pushlogBinary())
        process.arguments = ["serve", "--data-dir", dir, "--listen", "127.0.0.1:0"]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // End of file once serve has exited (it writes its last line first).
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { process.terminate() }
        return (process.terminationStatus, text)
    }

    /// Starts serve, registers an email pusher and appends one notification; returns the mail,
    /// serve (still running) and its data dir.
    func mailThrough(_ smtp: TestSMTPServer, _ environment: [String: String]) async throws
        -> (mail: TestSMTPServer.Message, serve: ServeProcess, dir: String, client: CurlClient) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-tls-\(UUID().uuidString)").path
        let serve = try ServeProcess(dataDir: dir, environment: [
            "PUSHLOG_EMAIL_SMTP_URL": smtp.url, "PUSHLOG_EMAIL_DELAY_BEFORE_MAIL": "0",
        ].merging(environment) { $1 })
        let client = try CurlClient()
        let api = "http://127.0.0.1:\(serve.port)"
        let pusher: JSON = .object([
            "user_id": .string(Self.user), "kind": .string("email"), "app_id": .string("m.email"),
            "pushkey": .string("alice@example.org"), "app_display_name": .string("Email"),
            "device_display_name": .string("alice@example.org"), "lang": .string("en"), "data": .object([:]),
        ])
        let put = try await client.send(method: "PUT", url: api + "/v1/pushers", body: pusher.serialized(),
                                        headers: ["Content-Type": "application/json"], timeout: .seconds(30))
        #expect(put.status == 200, "\(String(decoding: put.body, as: UTF8.self))")
        let note: JSON = .object(["notifications": .array([.object([
            "user_id": .string(Self.user), "room_id": .string("!lunch:example.org"), "event_id": .string("$e1"),
            "stream_ordering": .int(1), "actions": .array([.string("notify")]),
            "event": .object(["type": .string("m.room.message"), "sender": .string("@bob:example.org"),
                              "content": .object(["msgtype": .string("m.text"), "body": .string("see you at noon")])]),
        ])])])
        let post = try await client.send(method: "POST", url: api + "/v1/notifications", body: note.serialized(),
                                         headers: ["Content-Type": "application/json"], timeout: .seconds(30))
        #expect(post.status == 200)
        let mail = try await smtp.messages(count: 1, timeout: .seconds(30))[0]
        return (mail, serve, dir, client)
    }

    func finish(_ run: (mail: TestSMTPServer.Message, serve: ServeProcess, dir: String, client: CurlClient)) {
        #expect(run.serve.stop(SIGTERM) == .exited(0))
        run.client.shutdown()
        try? FileManager.default.removeItem(atPath: run.dir)
    }

    @Test("smtp_user over smtp:// without require_tls stops start-up with exit 64 and one line naming the keys")
    func plaintextAuthRefused() throws {
        let (status, stderr) = try serveToExit([
            "PUSHLOG_EMAIL_SMTP_URL": "smtp://127.0.0.1:\(closedPort())",
            "PUSHLOG_EMAIL_SMTP_USER": "pushlog", "PUSHLOG_EMAIL_SMTP_PASS": "s3cret",
        ])
        #expect(status == 64)
        let lines = stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(stderr)")
        #expect(stderr.contains("email.smtp_user"))
        #expect(stderr.contains("email.allow_plaintext_auth"))
        #expect(stderr.contains("email.require_tls"))
        #expect(!stderr.contains("s3cret"))
    }

    @Test("with allow_plaintext_auth: true the same configuration starts, and the mail goes authenticated in clear")
    func plaintextAuthAllowed() async throws {
        let smtp = try await TestSMTPServer.start(auth: ("pushlog", "s3cret"))
        defer { smtp.stop() }
        let run = try await mailThrough(smtp, [
            "PUSHLOG_EMAIL_SMTP_USER": "pushlog", "PUSHLOG_EMAIL_SMTP_PASS": "s3cret",
            "PUSHLOG_EMAIL_ALLOW_PLAINTEXT_AUTH": "true",
        ])
        defer { finish(run) }
        #expect(run.mail.authenticatedUser == "pushlog")
        #expect(!run.mail.tls)
    }

    @Test("tls_ca_file with the server's certificate: STARTTLS verifies, AUTH inside TLS; the mail's one-click headers, GET shows, POST unsubscribes")
    func caFileVerifies() async throws {
        let smtp = try await TestSMTPServer.start(tls: .startTLS, auth: ("pushlog", "s3cret"))
        defer { smtp.stop() }
        let run = try await mailThrough(smtp, [
            "PUSHLOG_EMAIL_SMTP_USER": "pushlog", "PUSHLOG_EMAIL_SMTP_PASS": "s3cret",
            "PUSHLOG_EMAIL_REQUIRE_TLS": "true", "PUSHLOG_EMAIL_TLS_CA_FILE": try #require(smtp.certificatePath),
        ])
        defer { finish(run) }
        #expect(run.mail.tls)
        #expect(run.mail.authenticatedUser == "pushlog")
        #expect(!run.serve.startupLog.contains("tls_verify"))

        let header = try #require(run.mail.header("List-Unsubscribe"))
        #expect(header.hasPrefix("<http://127.0.0.1:\(run.serve.port)/v1/unsubscribe?") && header.hasSuffix(">"))
        #expect(header.contains("&t="))
        #expect(run.mail.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click")
        let link = String(header.dropFirst().dropLast())
        func pushers() async throws -> String {
            String(decoding: try await run.client.send(method: "GET", url: "http://127.0.0.1:\(run.serve.port)/v1/pushers?user_id=%40alice%3Aexample.org",
                                                       timeout: .seconds(30)).body, as: UTF8.self)
        }
        let page = try await run.client.send(method: "GET", url: link, timeout: .seconds(30))
        #expect(page.status == 200)
        #expect(String(decoding: page.body, as: UTF8.self).contains("<form method=\"post\""))
        #expect(try await pushers().contains("alice@example.org"), "a GET (a link scanner) unsubscribes nobody")
        let done = try await run.client.send(method: "POST", url: link, body: Array("List-Unsubscribe=One-Click".utf8),
                                             headers: ["Content-Type": "application/x-www-form-urlencoded"], timeout: .seconds(30))
        #expect(done.status == 200)
        #expect(!(try await pushers().contains("alice@example.org")))
    }

    @Test("tls_verify: false mails through a self-signed certificate no CA file vouches for, and says so at start-up")
    func verifyOff() async throws {
        let smtp = try await TestSMTPServer.start(tls: .startTLS)
        defer { smtp.stop() }
        let run = try await mailThrough(smtp, ["PUSHLOG_EMAIL_REQUIRE_TLS": "true", "PUSHLOG_EMAIL_TLS_VERIFY": "false"])
        defer { finish(run) }
        #expect(run.mail.tls)
        let warning = run.serve.startupLog.split(separator: "\n").filter { $0.contains("email.tls_verify is false") }
        #expect(warning.count == 1, "start-up log: \(run.serve.startupLog)")
        #expect(warning.first?.contains("warning") == true)
    }

    @Test("a tls_ca_file that does not exist stops start-up with exit 64 naming the key")
    func missingCAFile() throws {
        let (status, stderr) = try serveToExit([
            "PUSHLOG_EMAIL_SMTP_URL": "smtp://127.0.0.1:\(closedPort())",
            "PUSHLOG_EMAIL_TLS_CA_FILE": "/nonexistent/ca.pem",
        ])
        #expect(status == 64)
        #expect(stderr.split(separator: "\n").count == 1, "stderr: \(stderr)")
        #expect(stderr.contains("email.tls_ca_file"))
        #expect(stderr.contains("/nonexistent/ca.pem"))
    }
}
