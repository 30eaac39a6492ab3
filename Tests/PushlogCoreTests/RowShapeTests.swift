import Foundation
import PushlogCore
import Testing

@Suite("Row shapes of the contract")
struct RowShapeTests {
    @Test("a PusherState row has every pusher field plus cursor, head, pending and times, null when unset")
    func pusherStateRow() throws {
        try withStore { store in
            try store.append([Make.set("@a:x", createdTS: 5_000), Make.notify("@a:x", so: 1)])
            let s = try #require(try store.read { view in try view.pusherState(Make.pusher("@a:x").id) })
            guard case .object(let o) = s.json else { Issue.record("not an object"); return }
            for key in ["user_id", "kind", "app_id", "pushkey", "app_display_name", "device_display_name", "lang",
                        "profile_tag", "data", "append", "enabled", "cursor", "head", "pending", "failing_since",
                        "last_success", "next_attempt_ts"] {
                #expect(o[key] != nil, "missing \(key)")
            }
            #expect(o["profile_tag"] == .null)
            #expect(o["failing_since"] == .null)
            #expect(o["last_success"] == .null)
            #expect(o["next_attempt_ts"] == .null)
            #expect(o["cursor"] == .int(1))
            #expect(o["head"] == .int(2))
            #expect(o["pending"] == .int(1))
            #expect(o["kind"] == .string("http"))
            #expect(o["pushkey_ts"] == .int(5))
        }
    }

    @Test("a replay row carries pos, type and append ts, with the entry's fields flat and absent values null")
    func replayRows() throws {
        try withStore { store in
            try store.append([Make.notify("@a:x", so: 7), Make.receipt("@a:x", so: 7),
                              .pusherRemoved(PusherID(userID: "@a:x", appID: "a", pushkey: "k"))], now: 1_234)
            let rows = try store.allEntries().map(\.json)
            #expect(rows.map { $0["pos"] } == [.int(1), .int(2), .int(3)])
            #expect(rows.map { $0["type"] } == [.string("notification"), .string("receipt"), .string("pusher_removed")])
            #expect(rows.allSatisfy { $0["ts"] == .int(1_234) })
            #expect(rows[0]["context"] == .null)
            #expect(rows[0]["stream_ordering"] == .int(7))
            #expect(rows[0]["event"]?["type"] == .string("m.room.message"))
            #expect(rows[1]["thread_id"] == .null)
            #expect(rows[1]["receipt_type"] == .string("m.read"))
            #expect(rows[2]["kind"] == .null)
            #expect(rows[2]["pushkey"] == .string("k"))
        }
    }
}
