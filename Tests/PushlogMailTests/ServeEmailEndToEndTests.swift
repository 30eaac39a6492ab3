import Curl
import Foundation
import PushlogCore
import Testing
import TestSupport

@Suite("pushlog serve mails: kill -9 before the mail, and the unsubscribe link", .serialized)
struct ServeEmailEndToEndTests {
    @Test("a notification acknowledged by the API is mailed once after a SIGKILL; the mail's one-click link unsubscribes, a forged one is refused")
    func killNineThenUnsubscribe() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-mail-e2e-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let smtp = try await TestSMTPServer.start()
        defer { smtp.stop() }
        let environment = ["PUSHLOG_EMAIL_SMTP_URL": smtp.url, "PUSHLOG_EMAIL_DELAY_BEFORE_MAIL": "1500ms",
                           "PUSHLOG_EMAIL_APP_NAME": "Pushlog E2E", "PUSHLOG_STORE_DURABILITY": "sync"]
        var serve = try ServeProcess(dataDir: dir, environment: environment)
        let client = try CurlClient()
        defer { client.shutdown() }
        func call(_ method: String, _ url: String, _ body: [UInt8] = []) async throws -> HTTPResponse {
            try await client.send(method: method, url: url, body: body, headers: ["Content-Type": "application/json"],
                                  timeout: .seconds(30))
        }
        let api = { "http://127.0.0.1:\(serve.port)" }
        let user = "@alice:example.org"
        let pusher: JSON = .object([
            "user_id": .string(user), "kind": .string("email"), "app_id": .string("m.email"),
            "pushkey": .string("alice@example.org"), "app_display_name": .string("Email"),
            "device_display_name": .string("alice@example.org"), "lang": .string("en"), "data": .object([:]),
        ])
        #expect(try await call("PUT", api() + "/v1/pushers", pusher.serialized()).status == 200)
        let note: JSON = .object(["notifications": .array([.object([
            "user_id": .string(user), "room_id": .string("!lunch:example.org"), "event_id": .string("$e1"),
            "stream_ordering": .int(1), "actions": .array([.string("notify")]),
            "event": .object(["type": .string("m.room.message"), "sender": .string("@bob:example.org"),
                              "content": .object(["msgtype": .string("m.text"), "body": .string("see you at noon")])]),
            "context": .object(["sender_display_name": .string("Bob"), "room_name": .string("Lunch")]),
        ])])])
        #expect(try await call("POST", api() + "/v1/notifications", note.serialized()).status == 200)

        // Killed long before the mail is due; nothing was mailed yet.
        #expect(serve.stop(SIGKILL) == .signalled(SIGKILL))
        #expect(smtp.receivedMessages.isEmpty)
        serve = try ServeProcess(dataDir: dir, environment: environment)
        let mail = try await smtp.messages(count: 1, timeout: .seconds(20))[0]
        #expect(mail.text.contains("see you at noon"))
        #expect(mail.recipients == ["alice@example.org"])
        // Caught up (the cursor is past the notification): still exactly one mail.
        func pushers() async throws -> String {
            String(decoding: try await call("GET", api() + "/v1/pushers?user_id=%40alice%3Aexample.org").body, as: UTF8.self)
        }
        var caughtUp = false
        for _ in 0..<1_500 where !caughtUp {
            caughtUp = try await pushers().contains("\"pending\":0")
            if !caughtUp { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(caughtUp, "the cursor passed the notification")
        #expect(smtp.receivedMessages.count == 1)

        // The one-click link, as a mail client would use it (RFC 8058), pointed at this server.
        let header = try #require(mail.header("List-Unsubscribe"))
        let link = String(header.dropFirst().dropLast())  // <…>
        let query = String(link[try #require(link.range(of: "/v1/unsubscribe?")).lowerBound...])
        let forged = query.replacingOccurrences(of: "sig=", with: "sig=00")
        let refused = try await call("POST", api() + forged, Array("List-Unsubscribe=One-Click".utf8))
        #expect(refused.status == 403)
        #expect(try await pushers().contains("alice@example.org"))
        let done = try await call("POST", api() + query, Array("List-Unsubscribe=One-Click".utf8))
        #expect(done.status == 200)
        #expect(!(try await pushers().contains("alice@example.org")))
        #expect(serve.stop(SIGTERM) == .exited(0))
    }
}
