import Testing
@testable import PushlogMail

@Suite("Digest subjects")
struct SubjectTests {
    typealias F = DigestFixture

    @Test("one message with a sender and a room name")
    func oneMessage() throws {
        #expect(try F.subject([F.message("$1")]) == "[Matrix] You have a message on Matrix from Bob in the Lunch room")
    }

    @Test("one message in a room without a name: from the sender")
    func oneMessageNoRoomName() throws {
        #expect(try F.subject([F.message("$1", context: F.context(room: nil))]) == "[Matrix] You have a message on Matrix from Bob")
        #expect(try F.subject([F.message("$1", context: nil)]) == "[Matrix] You have a message on Matrix from @bob:example.org")
    }

    @Test("the room alias counts as the room's name")
    func alias() throws {
        #expect(try F.subject([F.message("$1", context: F.context(room: nil, alias: "#lunch:example.org"))])
            == "[Matrix] You have a message on Matrix from Bob in the #lunch:example.org room")
    }

    @Test("several messages in a named room")
    func severalMessages() throws {
        let notifications = [F.message("$1"), F.message("$2", from: F.carol, at: F.t0 + 1, context: F.context(sender: "Carol"))]
        #expect(try F.subject(notifications) == "[Matrix] You have messages on Matrix in the Lunch room")
    }

    @Test("several messages in an unnamed room: from the sender, or the newest sender and others")
    func severalMessagesUnnamed() throws {
        let bobOnly = [F.message("$1", context: F.context(room: nil)), F.message("$2", at: F.t0 + 1, context: F.context(room: nil))]
        #expect(try F.subject(bobOnly) == "[Matrix] You have messages on Matrix from Bob")
        let two = bobOnly + [F.message("$3", from: F.carol, at: F.t0 + 2, context: F.context(sender: "Carol", room: nil))]
        #expect(try F.subject(two) == "[Matrix] You have messages on Matrix from Carol and others")
    }

    @Test("several rooms with the reason room named")
    func severalRooms() throws {
        let notifications = [F.message("$1"), F.message("$2", in: F.dev, at: F.t0 + 1, context: F.context(room: "Dev"))]
        #expect(try F.subject(notifications, reasonRoom: F.lunch) == "[Matrix] You have messages on Matrix in the Lunch room and others")
        #expect(try F.subject(notifications, reasonRoom: F.dev) == "[Matrix] You have messages on Matrix in the Dev room and others")
    }

    @Test("several rooms with the reason room unnamed: member-based")
    func severalRoomsUnnamed() throws {
        let sameSender = [F.message("$1", context: F.context(room: nil)),
                          F.message("$2", in: F.dev, at: F.t0 + 1, context: F.context(room: "Dev"))]
        #expect(try F.subject(sameSender, reasonRoom: F.lunch) == "[Matrix] You have messages on Matrix from Bob")
        let twoSenders = [F.message("$1", context: F.context(room: nil)),
                          F.message("$2", in: F.dev, from: F.carol, at: F.t0 + 1, context: F.context(sender: "Carol", room: "Dev"))]
        // The reason room's newest sender comes first.
        #expect(try F.subject(twoSenders, reasonRoom: F.lunch) == "[Matrix] You have messages on Matrix from Bob and others")
    }

    @Test("an invite: to join the named room, or to chat")
    func invites() throws {
        #expect(try F.subject([F.invite("$1")]) == "[Matrix] Bob has invited you to join the Lunch room on Matrix")
        #expect(try F.subject([F.invite("$1", context: F.context(room: nil))]) == "[Matrix] Bob has invited you to chat on Matrix")
        #expect(try F.subject([F.invite("$1", context: nil)]) == "[Matrix] @bob:example.org has invited you to chat on Matrix")
    }

    @Test("the app name is the configured one")
    func appName() throws {
        let subject = try F.render(F.digest([F.message("$1")], app: "Element")).subject
        #expect(subject == "[Element] You have a message on Element from Bob in the Lunch room")
    }

    @Test("subjects are plain text on one line: CR and LF fold to a space, nothing is escaped")
    func plainOneLine() throws {
        let message = F.message("$1", context: F.context(sender: "Bob\r\nBcc: eve@example.org", room: "Lunch & <Co>\n"))
        let subject = try F.subject([message])
        #expect(subject == "[Matrix] You have a message on Matrix from Bob Bcc: eve@example.org in the Lunch & <Co> room")
        #expect(!subject.contains("\r") && !subject.contains("\n"))
        #expect(DigestSubject.fold("a\r\n\r\nb\tc\u{2028}d\u{7}e") == "a b c de")
    }
}
