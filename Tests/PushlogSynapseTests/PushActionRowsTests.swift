import PushlogCore
@testable import PushlogSynapse
import Testing

/// The push-action rows as the query sends them: one per event and (actions, highlight,
/// thread), its users a JSON array, the event's columns with the event's first row only (NULL
/// in the rows after it), the number of users last.
@Suite("push-action rows to notifications")
struct PushActionRowsTests {
    static let event = #"{"type": "m.room.message", "sender": "@bob:x", "content": {"body": "hi @carol"}, "origin_server_ts": 5}"#
    static let mention = #"["notify",{"set_tweak":"sound","value":"default"},{"set_tweak":"highlight"}]"#

    /// A row: stream ordering, users, then (first row only) room and event id, actions,
    /// highlight, thread, (first row only) received time, event, room name, alias, members,
    /// sender's name; the number of users.
    static func row(_ so: Int64, _ users: [String], first: (event: String, json: String)?, actions: String = "",
                    highlight: Int64 = 0, thread: String = "main") -> SQLRow {
        let t: (String?) -> SQLValue = { $0.map { .text($0) } ?? .null }
        let list = "[" + users.map { String(decoding: JSON.string($0).serialized(), as: UTF8.self) }.joined(separator: ",") + "]"
        return [.int(so), .text(list), t(first.map { _ in "!r:x" }), t(first?.event), .text(actions), .int(highlight),
                .text(thread), first == nil ? .null : .int(7), t(first?.json), t(first.map { _ in "Room" }), .null,
                first == nil ? .null : .int(3), t(first.map { _ in "Bob" }), .int(Int64(users.count))]
    }

    /// What one user's row decodes to alone: `row` for that user, the event's columns from `first`.
    static func alone(_ row: SQLRow, user: String, first: SQLRow) -> PushNotification? {
        var r = row
        r[1] = .text(user)
        for c in SynapseRows.eventColumns { r[c] = first[c] }
        if case .notification(let n)? = SynapseRows.pushAction(r, now: 1)?.entry { return n }
        return nil
    }

    @Test("each user's actions and thread are their own; the event, room and context are the first row's; users in byte order")
    func usersOfOneEvent() throws {
        // As SQLite may send them: a group's users in any order, the groups of a position in any
        // order after the first.
        let rows = [
            Self.row(10, ["@dave:x", "@alice:x"], first: ("$a", Self.event)),
            Self.row(10, ["@erin:x"], first: nil, thread: "$root"),
            Self.row(10, ["@carol:x"], first: nil, actions: Self.mention, highlight: 1),
            Self.row(11, ["@carol:x", "@alice:x"], first: ("$b", #"{"type": "m.room.message", "sender": "@bob:x", "content": {"body": "2"}}"#)),
        ]
        let out = SynapseRows.pushActions(rows, now: 1)
        #expect(out.map(\.userID) == ["@alice:x", "@carol:x", "@dave:x", "@erin:x", "@alice:x", "@carol:x"])
        #expect(out.map(\.position) == [10, 10, 10, 10, 11, 11])
        #expect(out.map(\.receivedTS) == [7, 7, 7, 7, 7, 7])
        let ns = out.compactMap { row -> PushNotification? in
            if case .notification(let n)? = row.entry { return n }
            return nil
        }
        #expect(ns.count == 6)
        #expect(ns.map(\.userID) == out.map(\.userID))
        #expect(ns.map(\.eventID) == ["$a", "$a", "$a", "$a", "$b", "$b"])
        #expect(ns.map(\.roomID) == Array(repeating: "!r:x", count: 6))
        #expect(ns.map(\.threadID) == ["main", "main", "main", "$root", "main", "main"])
        #expect(ns.map(\.highlights) == [false, true, false, false, false, false])
        #expect(ns[0].actions == SynapseRows.defaultNotifyActions && ns[2].actions == SynapseRows.defaultNotifyActions)
        #expect(ns[3].event["content"] == ns[0].event["content"] && ns[3].context == ns[0].context)
        #expect(ns[5].event["content"] == .object(["body": .string("2")]))
        #expect(ns[2].context?["sender_display_name"] == .string("Bob") && ns[2].context?["member_count"] == .int(3))
        // Each user gets what the row alone, with that user and its event's columns, decodes to.
        let alone = [Self.alone(rows[0], user: "@alice:x", first: rows[0]), Self.alone(rows[2], user: "@carol:x", first: rows[0]),
                     Self.alone(rows[0], user: "@dave:x", first: rows[0]), Self.alone(rows[1], user: "@erin:x", first: rows[0]),
                     Self.alone(rows[3], user: "@alice:x", first: rows[3]), Self.alone(rows[3], user: "@carol:x", first: rows[3])]
        #expect(alone == ns.map { Optional($0) })
    }

    @Test("a user id the decoder refuses gets no entry; the users after it still get theirs")
    func refusedUser() {
        let rows = [Self.row(10, ["@alice:x", "@bad\u{7}:x", "@carol:x"], first: ("$a", Self.event))]
        let out = SynapseRows.pushActions(rows, now: 1)
        #expect(out.map(\.userID) == ["@alice:x", "@bad\u{7}:x", "@carol:x"])
        #expect(out.map { $0.entry == nil } == [false, true, false])
    }

    @Test("a batch counts the table's rows, not the rows read: a row stands for its users")
    func tableRows() {
        let rows = [Self.row(10, ["@a:x", "@b:x", "@c:x"], first: ("$a", Self.event)), Self.row(11, ["@a:x"], first: ("$b", Self.event))]
        #expect(SynapseStream.pushActions.tableRows(rows) == 4)
        #expect(SynapseStream.receipts.tableRows(rows) == 2)
    }
}
