import Foundation
import PushlogCore
@testable import PushlogMail
import Testing
@testable import PushlogRuntime

/// An email pass loads at most `email.max_notifications_per_room` events per room; the rest of a
/// busy room are counted, not loaded.
@Suite("Email pusher: a busy room is loaded up to max_notifications_per_room", .serialized)
struct EmailBoundedLoadTests {
    static let lunch = "!lunch:example.org"
    static let games = "!games:example.org"

    @Test("50 notifications in one room: the pass loads the newest 20, the mail shows them and counts the other 30")
    func fiftyInOneRoom() async throws {
        let seen = Seen()
        try await withEmailHarness(observe: { seen.add($0) }) { h in
            let now = SystemClock.nowMS()
            try h.notify((1...50).map { mailNote($0, body: "msg [\($0)]", receivedTS: now) }
                + [mailNote(51, room: Self.games, roomName: "Games", body: "msg [51]", receivedTS: now)])
            let mail = try await h.smtp.messages(count: 1)[0]
            #expect(try await h.waitCaughtUp())
            #expect(h.smtp.receivedMessages.count == 1, "the 30 counted ones are covered by this mail, not mailed later")

            // What the pass loaded from the store for the mail.
            let request = try #require(seen.all.first)
            #expect(seen.all.count == 1)
            #expect(request.notifications.filter { $0.roomID == Self.lunch }.map(\.eventID) == (31...50).map { "$e\($0)" })
            #expect(request.notifications.filter { $0.roomID == Self.games }.map(\.eventID) == ["$e51"])
            #expect(request.omittedPerRoom == [Self.lunch: 30])

            // What the mail says: the 20 shown, and the 30 before them counted (20 + 30 = 50).
            for i in 31...51 { #expect(mail.text.contains("msg [\(i)]"), "message \(i) is shown") }
            for i in 1...30 { #expect(!mail.text.contains("msg [\(i)]"), "message \(i) is only counted") }
            #expect(mail.text.contains("(30 earlier messages not shown: "))
            #expect(mail.html.contains("30 earlier messages not shown"))
            #expect(mail.text.occurrences(of: "msg [") == 21)
        }
    }

    @Test("the configured bound applies, and a room within it is loaded whole")
    func configuredBound() async throws {
        let seen = Seen()
        var config = EmailHarness.fastConfig
        config.maxNotificationsPerRoom = 3
        try await withEmailHarness(email: config, observe: { seen.add($0) }) { h in
            let now = SystemClock.nowMS()
            try h.notify((1...7).map { mailNote($0, body: "msg [\($0)]", receivedTS: now) }
                + [8, 9].map { mailNote($0, room: Self.games, roomName: "Games", body: "msg [\($0)]", receivedTS: now) })
            let mail = try await h.smtp.messages(count: 1)[0]
            #expect(try await h.waitCaughtUp())
            let request = try #require(seen.all.first)
            #expect(request.notifications.map(\.eventID) == ["$e5", "$e6", "$e7", "$e8", "$e9"])
            #expect(request.omittedPerRoom == [Self.lunch: 4])
            #expect(mail.text.contains("(4 earlier messages not shown: "))
        }
    }

    @Test("the renderer counts the notifications not loaded: in a shown room's earlier messages and in the hidden rooms' total")
    func renderCountsOmitted() throws {
        typealias F = DigestFixture
        var digest = F.digest([F.message("$a", in: F.lunch, body: "shown lunch"),
                               F.message("$b", in: F.dev, body: "hidden dev", at: F.t0 - F.minute)])
        digest.omittedPerRoom = [F.lunch: 30, F.dev: 7]
        let mail = try F.render(digest, maxRooms: 1, maxMessagesPerRoom: 20)
        #expect(mail.text.contains("(30 earlier messages not shown: "))
        #expect(mail.text.contains("...and 1 more room with 8 unread messages."))
        #expect(mail.text.contains("shown lunch") && !mail.text.contains("hidden dev"))
    }

    @Test("the selection keeps log order and the newest of each room, rooms interleaved")
    func selection() {
        let rooms: [UInt64: String] = [1: "a", 2: "b", 3: "a", 4: "a", 5: "b", 6: "a", 7: "c"]
        let (shown, omitted) = EmailPusher.shown([1, 2, 3, 4, 5, 6, 7], rooms: rooms, perRoom: 2)
        #expect(shown == [2, 4, 5, 6, 7])
        #expect(omitted == ["a": 2])
        let (all, none) = EmailPusher.shown([1, 2, 3], rooms: rooms, perRoom: 20)
        #expect(all == [1, 2, 3])
        #expect(none.isEmpty)
    }
}

/// The digests the pool composed, in order.
private final class Seen: @unchecked Sendable {
    private let lock = NSLock()
    private var requests: [Digest] = []
    func add(_ r: Digest) { lock.withLock { requests.append(r) } }
    var all: [Digest] { lock.withLock { requests } }
}
