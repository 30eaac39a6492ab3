import Foundation
import PushlogCore
import PushlogMail
import Testing
import TestSupport
@testable import PushlogRuntime

/// The email pusher against a real SMTP server (aiosmtpd on 127.0.0.1), with short durations.
@Suite("Email pusher: delay, digests, throttles, reads, failures and restarts", .serialized)
struct EmailPusherTests {
    @Test("no mail before delay_before_mail; then exactly one, and the cursor moves once the server accepted it")
    func delayThenOneMail() async throws {
        try await withEmailHarness { h in
            let received = SystemClock.nowMS()
            try h.notify([mailNote(1, receivedTS: received)])
            let mails = try await h.smtp.messages(count: 1)
            #expect(try await h.waitCaughtUp())  // the cursor and throttles are written after the server's answer
            let sent = try #require(h.throttles["!lunch:example.org"]).lastSentTS
            #expect(sent - received >= h.email.delayBeforeMailMS, "mailed \(sent - received) ms after the notification")
            #expect(h.smtp.receivedMessages.count == 1)
            let mail = mails[0]
            #expect(mail.recipients == [EmailHarness.address])
            #expect(mail.header("Subject") == "[Pushlog Test] You have a message on Pushlog Test from Bob in the Lunch room")
            #expect(mail.text.contains("message number 1"))
            #expect(mail.html.contains("message number 1"))
            #expect(mail.header("List-Unsubscribe")?.contains("http://pushlog.example.org/v1/unsubscribe?") == true)
            #expect(mail.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click")
            #expect(h.state?.lastSuccess != nil)
            #expect((h.processes.snapshot()["emailpush.process"]?.startCount ?? 0) >= 1)
        }
    }

    @Test("one mail covers every due notification across rooms; each room gets throttle_start once")
    func oneMailForManyRooms() async throws {
        try await withEmailHarness { h in
            try h.notify([mailNote(1), mailNote(2, room: "!games:example.org", roomName: "Games", sender: "Carol"),
                          mailNote(3), mailNote(4, room: "!work:example.org", roomName: "Work")])
            let mail = try await h.smtp.messages(count: 1)[0]
            #expect(try await h.waitCaughtUp())
            #expect(h.smtp.receivedMessages.count == 1)
            for i in 1...4 { #expect(mail.text.contains("message number \(i)"), "notification \(i) is in the mail") }
            for room in ["Lunch", "Games", "Work"] { #expect(mail.html.contains(room)) }
            #expect(mail.html.contains("Carol"))
            let throttles = h.throttles
            #expect(Set(throttles.keys) == ["!lunch:example.org", "!games:example.org", "!work:example.org"])
            // Once per room per email: two notifications in Lunch still give throttle_start (Synapse: ×144 twice).
            #expect(throttles.values.allSatisfy { $0.throttleMS == h.email.throttleStartMS })
        }
    }

    @Test("a room's next mail waits for its throttle, which grows up to throttle_max, and other rooms are not held up")
    func throttleProgression() async throws {
        try await withEmailHarness { h in
            let room = "!lunch:example.org"
            try h.notify([mailNote(1)])
            _ = try await h.smtp.messages(count: 1)
            #expect(try await h.waitCaughtUp())
            let first = try #require(h.throttles[room])
            #expect(first.throttleMS == 400)

            try h.notify([mailNote(2)])
            _ = try await h.smtp.messages(count: 2)
            #expect(try await h.waitCaughtUp())
            let second = try #require(h.throttles[room])
            #expect(second.lastSentTS - first.lastSentTS >= 400, "the second mail waited for the room's throttle")
            #expect(second.throttleMS == 1_200, "400 ms × 144, capped at throttle_max")

            // Another room is mailed on its own delay while Lunch is throttled.
            try h.notify([mailNote(3), mailNote(4, room: "!games:example.org", roomName: "Games")])
            let mails = try await h.smtp.messages(count: 3)
            #expect(mails[2].text.contains("message number 4"))
            #expect(!mails[2].text.contains("message number 3"), "Lunch is still throttled")
            let fourth = try await h.smtp.messages(count: 4)[3]
            #expect(fourth.text.contains("message number 3") && !fourth.text.contains("message number 4"),
                    "mailed once each: the Games notification is not mailed again")
            #expect(try await h.waitCaughtUp())
            let third = try #require(h.throttles[room])
            #expect(third.lastSentTS - second.lastSentTS >= 1_200)
            #expect(third.throttleMS == 1_200)
            #expect(h.smtp.receivedMessages.count == 4)
        }
    }

    @Test("a room without mail for throttle_reset_after is unthrottled again and starts over at throttle_start")
    func throttleReset() async throws {
        var config = EmailHarness.fastConfig
        config.throttleMaxMS = 60_000
        config.throttleResetAfterMS = 1_000
        try await withEmailHarness(email: config) { h in
            let room = "!lunch:example.org"
            try h.notify([mailNote(1)])
            _ = try await h.smtp.messages(count: 1)
            try h.notify([mailNote(2)])
            _ = try await h.smtp.messages(count: 2)
            #expect(try await h.waitCaughtUp())
            let second = try #require(h.throttles[room])
            #expect(second.throttleMS == 57_600, "400 ms × 144")
            try h.notify([mailNote(3)])
            _ = try await h.smtp.messages(count: 3)
            #expect(try await h.waitCaughtUp())
            let third = try #require(h.throttles[room])
            let gap = third.lastSentTS - second.lastSentTS
            #expect(gap >= 1_000 && gap < 57_600, "mailed once the reset time passed (\(gap) ms), not after the 57.6 s throttle")
            #expect(third.throttleMS == 400, "back to throttle_start")
        }
    }

    @Test("notifications read before their mail is due are not mailed; the cursor still moves past them")
    func readBeforeDue() async throws {
        var config = EmailHarness.fastConfig
        config.delayBeforeMailMS = 600
        try await withEmailHarness(email: config) { h in
            try h.notify([mailNote(1), mailNote(2)])
            try h.read(room: "!lunch:example.org", through: 1002)
            #expect(try await h.waitCaughtUp())
            let caughtUpAt = SystemClock.nowMS()
            #expect(h.smtp.receivedMessages.isEmpty)
            #expect(h.throttles.isEmpty)
            // A later notification is mailed alone.
            try h.notify([mailNote(3)])
            let mail = try await h.smtp.messages(count: 1)[0]
            #expect(mail.text.contains("message number 3"))
            #expect(!mail.text.contains("message number 1") && !mail.text.contains("message number 2"))
            #expect(caughtUpAt > 0)
        }
    }

    @Test("SMTP refusing, then down, when a mail is due: retried with backoff, no throttle touched; back up, the mail arrives once")
    func smtpDownThenBack() async throws {
        try await withEmailHarness(smtpMode: .rejectData(451)) { h in
            try h.notify([mailNote(1), mailNote(2, room: "!games:example.org", roomName: "Games")])
            // Refused: the pusher backs off; nothing is marked as mailed.
            _ = try await h.smtp.sessions(count: 1)
            #expect(try await eventually { h.state?.failingSince != nil })
            #expect(h.throttles.isEmpty)
            #expect(try (h.state?.cursor ?? 0) < h.store.read { view in try view.head(user: EmailHarness.user) }, "the cursor did not move")
            // Down: nothing listens on its port.
            let port = h.smtp.port
            h.smtp.stop()
            // Wait for an attempt that met the closed port (the second failure logged).
            let failures = { h.logs.lines.filter { $0.level == .warning && $0.message.contains("sending notification email failed") } }
            #expect(try await eventually { failures().count >= 2 }, "\(failures().map(\.message))")
            #expect(h.throttles.isEmpty)
            h.smtp = try await TestSMTPServer.start(port: port)
            let mail = try await h.smtp.messages(count: 1, timeout: .seconds(20))[0]
            #expect(mail.text.contains("message number 1") && mail.text.contains("message number 2"))
            #expect(try await h.waitCaughtUp())
            #expect(h.smtp.receivedMessages.count == 1)
            #expect(h.state?.failingSince == nil && h.state?.nextAttempt == nil)
            #expect(h.throttles.count == 2)
        }
    }

    @Test("a notification poked in while a send is failing is mailed with the retry, and the pool still goes idle")
    func pokedDuringAFailingSend() async throws {
        try await withEmailHarness(smtpMode: .slowReject(milliseconds: 800)) { h in
            try h.notify([mailNote(1)])
            try await h.smtp.waitForEvent("delaying")  // the pass is inside the SMTP exchange
            try h.notify([mailNote(2, room: "!games:example.org", roomName: "Games")])
            #expect(try await eventually { h.state?.failingSince != nil })
            try await h.smtp.setMode(.accept)
            let mail = try await h.smtp.messages(count: 1, timeout: .seconds(20))[0]
            #expect(mail.text.contains("message number 1") && mail.text.contains("message number 2"))
            // The pool counts the loop as idle once it waits or ends (a poke during a pass must not
            // leave it counted as awake forever).
            let idle = Flag()
            Task { await h.pool.waitUntilIdle(); idle.set() }  // not a child task: a hang must not hang the test
            #expect(try await eventually(timeout: 15) { idle.isSet }, "waitUntilIdle returned")
            #expect(try await h.waitCaughtUp())
            #expect(h.smtp.receivedMessages.count == 1)
        }
    }

    @Test("a restart between the notification and its mail: the mail still comes, once")
    func restartBeforeMail() async throws {
        var config = EmailHarness.fastConfig
        config.delayBeforeMailMS = 800
        try await withEmailHarness(email: config) { h in
            try h.notify([mailNote(1)])
            try await h.restartPool()  // long before the mail is due
            #expect(h.smtp.receivedMessages.isEmpty)
            let mail = try await h.smtp.messages(count: 1)[0]
            #expect(mail.text.contains("message number 1"))
            #expect(try await h.waitCaughtUp())
            try await h.restartPool()
            #expect(try await h.waitCaughtUp())
            #expect(h.smtp.receivedMessages.count == 1)
        }
    }

    @Test("a room name or sender carrying CR/LF cannot add a header or a recipient")
    func headerInjection() async throws {
        try await withEmailHarness { h in
            try h.notify([mailNote(1, roomName: "Lunch\r\nBcc: evil@example.org", sender: "Bob\r\nX-Injected: yes")])
            let mail = try await h.smtp.messages(count: 1)[0]
            #expect(mail.recipients == [EmailHarness.address])
            #expect(mail.header("Bcc") == nil)
            #expect(mail.header("X-Injected") == nil)
            #expect(mail.defects.isEmpty, "\(mail.defects)")
            let subject = try #require(mail.header("Subject"))
            #expect(!subject.contains("\r") && !subject.contains("\n"))
        }
    }

    @Test("what a message says is escaped in the HTML part; javascript: links are stripped and http links get nofollow")
    func escapingAndLinks() async throws {
        try await withEmailHarness { h in
            let formatted = #"<a href="javascript:alert(1)">click me</a> <a href="https://example.org/x">site</a><script>alert(2)</script>"#
            try h.notify([mailNote(1, roomName: "<b>Lunch</b> & co", sender: "<img src=x onerror=alert(3)>",
                                   content: ["msgtype": .string("m.text"), "body": .string("click me"),
                                             "format": .string("org.matrix.custom.html"), "formatted_body": .string(formatted)])])
            let mail = try await h.smtp.messages(count: 1)[0]
            #expect(!mail.html.contains("javascript:"))
            #expect(!mail.html.contains("<script"))
            #expect(!mail.html.contains("<img src=x"))
            #expect(mail.html.contains("&lt;b&gt;Lunch&lt;/b&gt; &amp; co"))
            #expect(mail.html.contains(#"rel="nofollow""#))
            #expect(mail.text.contains("<b>Lunch</b> & co"), "the text part is not HTML-escaped")
        }
    }

    @Test("an override directory replaces a template file by file; a missing one warns once and mails with the built-ins")
    func templateOverrideAndFallback() async throws {
        let custom = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-tpl-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: custom, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: custom) }
        try "CUSTOM DIGEST for {{user_display_name}}\n{{unsubscribe_link}}\n".write(toFile: custom + "/notif_mail.txt", atomically: true, encoding: .utf8)
        try await withEmailHarness(templateDir: custom) { h in
            try h.notify([mailNote(1)])
            let mail = try await h.smtp.messages(count: 1)[0]
            #expect(mail.text.hasPrefix("CUSTOM DIGEST for"))
            #expect(mail.html.contains("message number 1"), "the HTML template is still the built-in one")
        }

        try await withEmailHarness(templateDir: "/nonexistent/pushlog-templates") { missing in
            let warnings = missing.logs.lines.filter { $0.level == .warning && $0.message.contains("/nonexistent/pushlog-templates") }
            #expect(warnings.count == 1)
            try missing.notify([mailNote(1)])
            let fallback = try await missing.smtp.messages(count: 1)[0]
            #expect(fallback.text.contains("message number 1"))
        }
    }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
