import PushlogCore
@testable import PushlogSynapse
import Testing

/// The push-action rows as the query sends them: the event's columns with the first row of each
/// event only, NULL in the rows after it.
@Suite("push-action rows to notifications")
struct PushActionRowsTests {
    static let event = #"{"type": "m.room.message", "sender": "@bob:x", "content": {"body": "hi @carol"}, "origin_server_ts": 5}"#
    static let mention = #"["notify",{"set_tweak":"sound","value":"default"},{"set_tweak":"highlight"}]"#

    /// A row: stream ordering, user, then (first row only) room and event id, actions,
    /// highlight, thread, (first row only) received time, event, room name, alias, members,
    /// sender's name.
    static func row(_ so: Int64, _ user: String, first: (event: String, json: String)?, actions: String = "",
                    highlight: Int64 = 0, thread: String = "main") -> SQLRow {
        let t: (String?) -> SQLValue = { $0.map { .text($0) } ?? .null }
        return [.int(so), .text(user), t(first.map { _ in "!r:x" }), t(first?.event), .text(actions), .int(highlight),
                .text(thread), first == nil ? .null : .int(7), t(first?.json), t(first.map { _ in "Room" }), .null,
                first == nil ? .null : .int(3), t(first.map { _ in "Bob" })]
    }

    @Test("each user's actions and thread are their own; the event, room and context are the first row's")
    func usersOfOneEvent() throws {
        let rows = [
            Self.row(10, "@alice:x", first: ("$a", Self.event)),
            Self.row(10, "@carol:x", first: nil, actions: Self.mention, highlight: 1),
            Self.row(10, "@dave:x", first: nil),
            Self.row(10, "@erin:x", first: nil, thread: "$root"),
            Self.row(11, "@alice:x", first: ("$b", #"{"type": "m.room.message", "sender": "@bob:x", "content": {"body": "2"}}"#)),
            Self.row(11, "@carol:x", first: nil),
        ]
        let out = SynapseRows.pushActions(rows, now: 1)
        #expect(out.map(\.userID) == ["@alice:x", "@carol:x", "@dave:x", "@erin:x", "@alice:x", "@carol:x"])
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
        // Each row is what the row alone, its event's columns filled in, decodes to.
        var filled = rows
        for i in [1, 2, 3] { for c in SynapseRows.eventColumns { filled[i][c] = rows[0][c] } }
        filled[5] = rows[5]
        for c in SynapseRows.eventColumns { filled[5][c] = rows[4][c] }
        for (i, r) in filled.enumerated() {
            guard case .notification(let alone)? = SynapseRows.pushAction(r, now: 1)?.entry else {
                Issue.record("row \(i) decodes to no notification")
                continue
            }
            #expect(alone == ns[i], "row \(i)")
        }
    }

    @Test("a user id the decoder refuses gets no entry; the users after it still get theirs")
    func refusedUser() {
        let rows = [
            Self.row(10, "@alice:x", first: ("$a", Self.event)),
            Self.row(10, "@bad\u{7}:x", first: nil),  // a control character
            Self.row(10, "@carol:x", first: nil),
        ]
        let out = SynapseRows.pushActions(rows, now: 1)
        #expect(out.map { $0.entry == nil } == [false, true, false])
    }
}
