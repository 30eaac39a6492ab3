import Foundation
import Mustache
import PushlogCore
import Testing
@testable import PushlogMail

@Suite("Digest rendering")
struct RenderTests {
    typealias F = DigestFixture

    @Test("rooms come newest activity first, messages in a room oldest first")
    func ordering() throws {
        let notifications = [
            F.message("$l1", in: F.lunch, body: "lunch one", at: F.t0),
            F.message("$d1", in: F.dev, body: "dev one", at: F.t0 + F.minute, context: F.context(room: "Dev")),
            F.message("$l3", in: F.lunch, body: "lunch three", at: F.t0 + 4 * F.minute),
            // Logged after $l3 but received before it: still shown before it.
            F.message("$l2", in: F.lunch, body: "lunch two", at: F.t0 + 2 * F.minute),
            F.message("$d2", in: F.dev, body: "dev two", at: F.t0 + 3 * F.minute, context: F.context(room: "Dev")),
        ]
        let mail = try F.render(F.digest(notifications))
        for part in [mail.text, mail.html] {
            let order = ["lunch one", "lunch two", "lunch three", "dev one", "dev two"].map { part.offset(of: $0) ?? -1 }
            #expect(!order.contains(-1))
            #expect(order[0] < order[1] && order[1] < order[2], "Lunch messages oldest first")
            #expect(order[3] < order[4], "Dev messages oldest first")
            #expect(order[2] < order[3], "Lunch (newest at +4 min) before Dev (+3 min)")
        }
        #expect(mail.text.offset(of: "== Lunch ==")! < mail.text.offset(of: "== Dev ==")!)
    }

    @Test("the room title is the newest context's room_name, else its room_alias, else the room id")
    func roomTitles() throws {
        let notifications = [
            F.message("$a1", in: "!a:x", at: F.t0 + 3, context: F.context(room: "Old name")),
            F.message("$a2", in: "!a:x", at: F.t0 + 2, context: F.context(room: "New name")),
            F.message("$a3", in: "!a:x", at: F.t0 + 1, context: nil),
            F.message("$b1", in: "!b:x", at: F.t0, context: F.context(room: nil, alias: "#bees:x")),
            F.message("$c1", in: "!c:x", at: F.t0 - 1, context: F.context(room: nil)),
        ]
        let text = try F.render(F.digest(notifications)).text
        #expect(text.contains("== New name =="))
        #expect(!text.contains("Old name"))
        #expect(text.contains("== #bees:x =="))
        #expect(text.contains("== !c:x =="))
    }

    @Test("a sender is their display name, else their newest known one, else their MXID")
    func senderNames() throws {
        let notifications = [
            F.message("$1", from: F.bob, body: "one", at: F.t0, context: F.context(sender: "Bobby")),
            F.message("$2", from: F.bob, body: "two", at: F.t0 + 1, context: F.context(sender: nil)),
            F.message("$3", from: F.carol, body: "three", at: F.t0 + 2, context: nil),
        ]
        let text = try F.render(F.digest(notifications)).text
        #expect(text.contains("Bobby (2026-11-29 14:05 UTC):\none\n"))
        #expect(text.contains("Bobby (2026-11-29 14:05 UTC):\ntwo\n"))
        #expect(text.contains("@carol:example.org (2026-11-29 14:05 UTC):\nthree\n"))
    }

    @Test("room names, display names and bodies are escaped in HTML and raw in text")
    func escaping() throws {
        let room = "<script>alert(\"r\")</script> & Co"
        let name = "Bob \"the <b>\" & 'Sons'"
        let body = "<script>alert(1)</script> a < b && c > \"d\""
        let message = F.message("$1", body: body, context: F.context(sender: name, room: room))
        let mail = try F.render(F.digest([message]))
        #expect(mail.html.contains("&lt;script&gt;alert(&quot;r&quot;)&lt;/script&gt; &amp; Co"))
        #expect(mail.html.contains("Bob &quot;the &lt;b&gt;&quot; &amp; &#39;Sons&#39;"))
        #expect(mail.html.contains("&lt;script&gt;alert(1)&lt;/script&gt; a &lt; b &amp;&amp; c &gt; &quot;d&quot;"))
        #expect(!mail.html.contains("<script"))
        #expect(!mail.html.contains("the <b>"))
        #expect(mail.text.contains("== \(room) =="))
        #expect(mail.text.contains("\(name) (2026-11-29 14:05 UTC):\n\(body)\n"))
        #expect(!mail.text.contains("&lt;"))
        #expect(!mail.text.contains("&amp;"))
        #expect(!mail.text.contains("&quot;"))
        #expect(mail.subject == "[Matrix] You have a message on Matrix from \(name) in the \(room) room")
    }

    @Test("links are escaped in HTML attributes and raw in text")
    func linkEscaping() throws {
        let mail = try F.render(F.digest([F.message("$1")]))
        #expect(mail.html.contains("href=\"https://push.example.org/v1/unsubscribe?user_id=%40alice%3Aexample.org&amp;sig=abc\""))
        #expect(mail.text.contains("https://push.example.org/v1/unsubscribe?user_id=%40alice%3Aexample.org&sig=abc\n"))
    }

    @Test("an encrypted message reads \"An encrypted message.\"")
    func encrypted() throws {
        let message = F.message("$1", content: ["algorithm": .string("m.megolm.v1.aes-sha2"), "ciphertext": .string("AAAA")],
                                type: "m.room.encrypted")
        let mail = try F.render(F.digest([message]))
        #expect(mail.text.contains("Bob (2026-11-29 14:05 UTC):\nAn encrypted message.\n"))
        #expect(mail.html.contains("An encrypted message."))
        #expect(!mail.text.contains("AAAA") && !mail.html.contains("AAAA"))
    }

    @Test("an invite is a line saying who invited you and where to join, not a message")
    func invite() throws {
        let mail = try F.render(F.digest([F.invite("$inv")]))
        #expect(mail.text.contains("Bob invited you to Lunch, join at https://matrix.to/#/!lunch:example.org\n"))
        #expect(mail.html.contains("<strong>Bob</strong> invited you to Lunch."))
        #expect(mail.html.contains("<a href=\"https://matrix.to/#/!lunch:example.org\" style=\"color:#0a6ecc;\">Join the conversation</a>"))
        #expect(!mail.text.contains("unrecognised") && !mail.html.contains("unrecognised"))
        #expect(!mail.text.contains("Bob (2026-11-29"))
    }

    @Test("an invite for someone else is not an invite line")
    func othersInvite() throws {
        var other = F.invite("$inv")
        other.event["state_key"] = .string(F.carol)
        let mail = try F.render(F.digest([other]))
        #expect(!mail.text.contains("invited you"))
        #expect(mail.text.contains("A message with unrecognised content."))
    }

    @Test("other event types and messages without a body read as unrecognised content")
    func unrecognised() throws {
        let sticker = F.message("$1", body: "", content: ["body": .string("sticker"), "url": .string("mxc://x/y")], type: "m.sticker")
        let noBody = F.message("$2", at: F.t0 + 1, content: ["msgtype": .string("m.text")])
        let mail = try F.render(F.digest([sticker, noBody]))
        #expect(mail.text.occurrences(of: "A message with unrecognised content.") == 2)
        #expect(mail.html.occurrences(of: "A message with unrecognised content.") == 2)
    }

    @Test("an emote reads \"* sender body\"")
    func emote() throws {
        let mail = try F.render(F.digest([F.message("$1", body: "waves", msgtype: "m.emote")]))
        #expect(mail.text.contains("\n* Bob waves\n"))
        #expect(mail.html.contains("* Bob waves"))
    }

    @Test("formatted bodies are sanitised in HTML; the text part has the plain body")
    func formattedBody() throws {
        for msgtype in ["m.text", "m.notice", "m.emote"] {
            let content: [String: JSON] = [
                "msgtype": .string(msgtype), "body": .string("**hi** there"),
                "format": .string("org.matrix.custom.html"),
                "formatted_body": .string("<b>hi</b> <a href=\"javascript:alert(1)\">there</a><script>alert(2)</script>"),
            ]
            let mail = try F.render(F.digest([F.message("$1", content: content)]))
            #expect(mail.html.contains("<b>hi</b> <a>there</a>"), "\(msgtype)")
            #expect(!mail.html.contains("alert"))
            #expect(mail.text.contains("**hi** there\n"))
            #expect(!mail.text.contains("<b>"))
        }
        // An empty formatted_body falls back to the plain body.
        let empty: [String: JSON] = ["msgtype": .string("m.text"), "body": .string("<i>plain</i>"),
                                     "format": .string("org.matrix.custom.html"), "formatted_body": .string("")]
        let mail = try F.render(F.digest([F.message("$1", content: empty)]))
        #expect(mail.html.contains("&lt;i&gt;plain&lt;/i&gt;"))
    }

    @Test("a reply's quoted fallback is left out of both parts; a body merely starting with > is kept")
    func replyFallback() throws {
        let reply: [String: JSON] = [
            "msgtype": .string("m.text"), "body": .string("> <@carol:example.org> original\n> more\n\nthe reply"),
            "format": .string("org.matrix.custom.html"),
            "formatted_body": .string("<mx-reply><blockquote>original more</blockquote></mx-reply>the <b>reply</b>"),
            "m.relates_to": .object(["m.in_reply_to": .object(["event_id": .string("$0")])]),
        ]
        let mail = try F.render(F.digest([F.message("$1", content: reply)]))
        #expect(mail.text.contains("Bob (2026-11-29 14:05 UTC):\nthe reply\n"))
        #expect(mail.html.contains("the <b>reply</b>"))
        #expect(!mail.text.contains("original") && !mail.html.contains("original"))

        let quote = try F.render(F.digest([F.message("$1", body: "> not a reply\n\ntext")]))
        #expect(quote.text.contains("> not a reply\n\ntext\n"))
    }

    @Test("the heading is the subject without its [App] tag")
    func headline() throws {
        let mail = try F.render(F.digest([F.message("$1")]))
        #expect(mail.text.hasPrefix("Hi @alice:example.org,\n\nYou have a message on Matrix from Bob in the Lunch room\n"))
        #expect(mail.html.contains(">You have a message on Matrix from Bob in the Lunch room</h1>"))
        #expect(mail.html.contains("<title>[Matrix] You have a message on Matrix from Bob in the Lunch room</title>"))
    }

    @Test("plain bodies link their URLs with rel=nofollow and keep their line breaks")
    func plainBodyLinks() throws {
        let mail = try F.render(F.digest([F.message("$1", body: "see https://example.org/a?b=1&c=2.\nbye")]))
        #expect(mail.html.contains("see <a href=\"https://example.org/a?b=1&amp;c=2\" rel=\"nofollow\">https://example.org/a?b=1&amp;c=2</a>.<br>\nbye"))
        #expect(mail.text.contains("see https://example.org/a?b=1&c=2.\nbye\n"))
    }

    @Test("an image shows a thumbnail of its mxc url; a file shows its body; the room avatar is a thumbnail")
    func images() throws {
        let image = F.message("$1", content: ["msgtype": .string("m.image"), "body": .string("cat.png"),
                                               "url": .string("mxc://example.org/CAT")],
                              context: F.context(roomAvatar: "mxc://example.org/DUMMY_MEDIA_ID"))
        let file = F.message("$2", body: "report.pdf", msgtype: "m.file", at: F.t0 + 1)
        let mail = try F.render(F.digest([image, file]))
        #expect(mail.html.contains("<img src=\"https://hs.example.org/_matrix/media/v1/thumbnail/example.org/CAT?width=640&amp;height=480&amp;method=scale\" alt=\"cat.png\""))
        #expect(mail.html.contains("_matrix/media/v1/thumbnail/example.org/DUMMY_MEDIA_ID?width=48&amp;height=48&amp;method=crop"))
        #expect(mail.html.contains("report.pdf"))
        #expect(mail.text.contains("cat.png (image: https://hs.example.org/_matrix/media/v1/thumbnail/example.org/CAT?width=640&height=480&method=scale)"))
        #expect(mail.text.contains("\nreport.pdf\n"))
    }

    @Test("room and event links: matrix.to's own form, a client's #/room/ form, ids percent-encoded")
    func links() throws {
        let links = MatrixLinks(clientBaseURL: "https://matrix.to", publicBaseURL: "")
        #expect(links.room("!r:example.org") == "https://matrix.to/#/!r:example.org")
        #expect(links.event("$e", in: "!r:example.org") == "https://matrix.to/#/!r:example.org/$e")
        let client = MatrixLinks(clientBaseURL: "https://app.element.io/", publicBaseURL: "")
        #expect(client.room("!r:example.org") == "https://app.element.io/#/room/!r:example.org")
        #expect(client.event("$a/b+c?d#e f", in: "!r:example.org")
            == "https://app.element.io/#/room/!r:example.org/$a%2Fb+c%3Fd%23e%20f")
        #expect(client.room("#lunch:example.org") == "https://app.element.io/#/room/%23lunch:example.org")
        #expect(client.room("!é:x") == "https://app.element.io/#/room/!%C3%A9:x")

        let mail = try F.render(F.digest([F.message("$ev/1")], clientBaseURL: "https://chat.example.org"))
        #expect(mail.text.contains("\nhttps://chat.example.org/#/room/!lunch:example.org\n"))
        #expect(mail.html.contains("href=\"https://chat.example.org/#/room/!lunch:example.org/$ev%2F1\""))
    }

    @Test("mxc thumbnails: server and media, a trailing slash added to the base; anything else has none")
    func thumbnails() {
        let links = MatrixLinks(clientBaseURL: "https://matrix.to", publicBaseURL: "http://aaa")
        #expect(links.thumbnail("mxc://s.org/m1", width: 32, height: 32, method: "crop")
            == "http://aaa/_matrix/media/v1/thumbnail/s.org/m1?width=32&height=32&method=crop")
        #expect(links.thumbnail("https://s.org/m1", width: 32, height: 32, method: "crop") == nil)
        #expect(links.thumbnail("mxc://s.org", width: 32, height: 32, method: "crop") == nil)
        #expect(links.thumbnail("mxc://s.org/a/b", width: 32, height: 32, method: "crop") == nil)
        #expect(MatrixLinks(clientBaseURL: "x", publicBaseURL: "").thumbnail("mxc://s/m", width: 1, height: 1, method: "crop") == nil)
    }

    @Test("a long digest is summarised: every notification is shown or counted")
    func summarised() throws {
        // Room 0 (the newest) has 25 messages; 12 more rooms have 2 each; room 5 also an invite.
        var notifications: [PushNotification] = []
        for r in 1...12 {
            for m in 0..<2 {
                notifications.append(F.message("$r\(r)m\(m)", in: "!room\(r):x", body: "room \(r) msg \(m)",
                                               at: F.t0 + Int64(r * 10 + m), context: F.context(room: "Room \(r)")))
            }
        }
        notifications.append(F.invite("$inv", in: "!room5:x", at: F.t0 + 55, context: F.context(room: "Room 5")))
        for m in 0..<25 {
            notifications.append(F.message("$big\(m)", in: "!big:x", body: "big msg \(m).", at: F.t0 + 1000 + Int64(m),
                                           context: F.context(room: "Big")))
        }
        let renderer = try DigestRenderer(templates: F.builtIn(), maxRooms: 10, maxMessagesPerRoom: 10)
        let digest = F.digest(notifications)
        let view = renderer.makeView(digest, rooms: DigestRooms(userID: F.alice, notifications: notifications), subject: "")
        #expect(view.rooms.count == 10)
        #expect(view.rooms.first?.title == "Big")
        #expect(view.rooms.first?.messages.count == 10)
        #expect(view.rooms.first?.more_messages?.count == 15)
        #expect(view.more_rooms?.count == 3)
        #expect(view.more_rooms?.messages == 6)
        let accounted = view.rooms.reduce(0) { $0 + $1.messages.count + $1.invites.count + ($1.more_messages?.count ?? 0) }
            + (view.more_rooms?.messages ?? 0)
        #expect(accounted == notifications.count)

        let mail = renderer.render(digest)
        #expect(mail.text.contains("(15 earlier messages not shown: https://matrix.to/#/!big:x)"))
        #expect(mail.text.contains("...and 3 more rooms with 6 unread messages."))
        #expect(mail.html.contains("15 earlier messages not shown"))
        #expect(mail.html.contains("&hellip;and 3 more rooms with 6 unread messages."))
        // The newest ten of the big room are shown, oldest first; the earlier fifteen are not.
        #expect(!mail.text.contains("big msg 14."))
        #expect(mail.text.offset(of: "big msg 15.")! < mail.text.offset(of: "big msg 24.")!)
        #expect(mail.text.contains("Bob invited you to Room 5"))
        #expect(!mail.text.contains("Room 1 ==") && !mail.text.contains("Room 3 =="))

        let small = try DigestRenderer(templates: F.builtIn(), maxRooms: 2, maxMessagesPerRoom: 1).render(digest)
        #expect(small.text.contains("(24 earlier messages not shown"))
        #expect(small.text.contains("(1 earlier message not shown"))
        #expect(small.text.contains("...and 11 more rooms with 23 unread messages."))
    }

    @Test("times are UTC with the date; durations in words")
    func times() {
        #expect(MailTime.format(F.t0) == "2026-11-29 14:05 UTC")
        #expect(MailTime.format(F.t0 + 59_999) == "2026-11-29 14:05 UTC")
        #expect(MailTime.format(951_782_400_000) == "2000-02-29 00:00 UTC")
        #expect(MailTime.format(-60_000) == "1969-12-31 23:59 UTC")
        #expect(MailTime.duration(600_000) == "10 minutes")
        #expect(MailTime.duration(60_000) == "1 minute")
        #expect(MailTime.duration(86_400_000) == "24 hours")
        #expect(MailTime.duration(5_400_000) == "1 hour 30 minutes")
        #expect(MailTime.duration(500) == "0 seconds")
    }

    @Test("the footer says why the email was sent and links to unsubscribe")
    func reason() throws {
        let first = try F.render(F.digest([F.message("$1")]))
        #expect(first.text.contains(
            "You are receiving this email because you have unread messages in Lunch received at 2026-11-29 14:05 UTC, more than 10 minutes ago.\n"))
        #expect(!first.text.contains("We last emailed you"))
        #expect(first.text.contains("Unsubscribe from these emails: https://push.example.org/v1/unsubscribe?"))

        let again = try F.render(F.digest([F.message("$1")], lastSentTS: F.t0 - 86_400_000, throttleMS: 86_400_000))
        #expect(again.text.contains("We last emailed you about this room at 2026-11-28 14:05 UTC and wait at least 24 hours between emails about it."))
        #expect(again.html.contains("We last emailed you about this room at 2026-11-28 14:05 UTC"))
        #expect(again.html.contains("<a href=\"https://matrix.to/#/!lunch:example.org\" style=\"color:#737d8c;\">Lunch</a> received at"))
    }

    @Test("the text part carries no HTML of the templates")
    func textIsPlain() throws {
        let mail = try F.render(F.digest([F.message("$1"), F.invite("$2", in: F.dev, context: F.context(room: "Dev"))]))
        #expect(!mail.text.contains("<"))
        #expect(!mail.text.contains("&hellip;") && !mail.text.contains("&middot;"))
        #expect(mail.html.hasPrefix("<!DOCTYPE html>"))
        #expect(mail.html.hasSuffix("</html>\n"))
    }
}

@Suite("Digest views as the templates see them")
struct DigestViewLookupTests {
    /// Every stored property is reachable by its name through `child(named:)`, so templates see
    /// exactly what reflection would show them.
    func expectCovers<T: MustacheParent>(_ value: T, sourceLocation: SourceLocation = #_sourceLocation) {
        for case (let label?, let child) in Mirror(reflecting: value).children {
            let isNil = Mirror(reflecting: child).displayStyle == .optional && Mirror(reflecting: child).children.isEmpty
            #expect((value.child(named: label) == nil) == isNil, "\(T.self).\(label)", sourceLocation: sourceLocation)
        }
        #expect(value.child(named: "no_such_variable") == nil, sourceLocation: sourceLocation)
    }

    @Test("child(named:) answers every property of every view, and nothing else")
    func everyProperty() {
        let message = MessageView(event_id: "$e", event_link: "l", sender_id: "@b", sender_name: "Bob", sender_avatar_url: "a",
                                  time: "t", ts: 1, is_text: true, is_emote: false, is_image: false, is_encrypted: false,
                                  is_unrecognised: false, body_text: "b", body_html: "h", image_url: "i")
        let invite = InviteView(inviter_id: "@b", inviter_name: "Bob", room_title: "R", invite_link: "l", time: "t")
        let room = RoomView(room_id: "!r", title: "R", room_link: "l", room_avatar_url: "a", invites: [invite], messages: [message],
                            more_messages: MoreMessagesView(count: 2, plural: true))
        let reason = ReasonView(room_id: "!r", room_name: "R", room_link: "l", received_at: "t", delay: "d", delay_before_mail_ms: 1,
                                last_sent_at: "t", last_sent_ts: 1, throttle: "d", throttle_ms: 1, now: "n")
        let digest = DigestView(app_name: "A", user_id: "@a", user_display_name: "Alice", summary: "s", headline: "h",
                                unsubscribe_link: "u", rooms: [room],
                                more_rooms: MoreRoomsView(count: 1, plural: false, messages: 3, messages_plural: true),
                                reason: reason)
        expectCovers(message)
        expectCovers(invite)
        expectCovers(room)
        expectCovers(room.more_messages!)
        expectCovers(reason)
        expectCovers(digest)
        expectCovers(digest.more_rooms!)
        var bare = message
        bare.image_url = nil
        bare.sender_avatar_url = nil
        expectCovers(bare)
    }
}
