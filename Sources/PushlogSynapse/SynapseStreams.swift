#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PushlogCore

/// One row read from a Synapse stream: its position, what tells it apart from other rows at
/// that position, its user, and the log entry it becomes (nil: read, but nothing to append).
struct StreamRow: Sendable {
    var position: Int64
    var identity: String
    var userID: String
    var entry: LogEntry?
    /// When Synapse received the event (push actions only), for the lag gauge.
    var receivedTS: Int64?
}

/// A followed table: how to read its rows above a position, count them in a window, and turn
/// them into log entries exactly as the HTTP API would append them.
struct SynapseStream: Sendable {
    /// The name in `source_state` and in `pushlog_source_position{stream}`.
    let name: String
    /// `$1`: rows above this position; `$2`: at most this position; `$3`: how many. Written for
    /// both engines but for ``usersAggregate``: each engine's text, made once.
    private let selectPostgres: String
    private let selectSQLite: String
    /// Set when a row read stands for several of the table's rows: the column that says how
    /// many. A batch's `LIMIT` counts the table's rows.
    let rowsColumn: Int?
    /// `$1` < position <= `$2`.
    let count: String
    let head: String
    /// `$1` < position <= `$2`: the position of the row `$3` places further (0: the first), in
    /// position order; none when there are not that many. Set, a batch is read as the range of
    /// positions below it, which needs no `LIMIT`: its end is known before its rows are read,
    /// so the next batch can be read meanwhile.
    let boundary: String?
    /// A batch of rows read (in the order read) to stream rows; a row that is not one (no
    /// position) is left out.
    let mapRows: @Sendable ([SQLRow], Int64) -> [StreamRow]

    init(name: String, select: String, count: String, head: String, rowsColumn: Int? = nil, boundary: String? = nil,
         mapRows: @escaping @Sendable ([SQLRow], Int64) -> [StreamRow]) {
        self.name = name
        selectPostgres = select.replacingOccurrences(of: Self.usersAggregate, with: "json_agg(a.user_id ORDER BY a.user_id)::text")
        // Sorted by the decoder: SQLite's order within a group is the rows' order, not a promise.
        selectSQLite = select.replacingOccurrences(of: Self.usersAggregate, with: "json_group_array(a.user_id)")
        self.count = count
        self.head = head
        self.rowsColumn = rowsColumn
        self.boundary = boundary
        self.mapRows = mapRows
    }

    /// Where the select aggregates user ids into a JSON array, sorted: the one thing of it the
    /// engines spell differently.
    static let usersAggregate = "%users%"

    /// The select in `dialect`.
    func select(_ dialect: SQLDialect) -> String { dialect == .postgres ? selectPostgres : selectSQLite }

    /// How many of the table's rows the rows read stand for.
    func tableRows(_ raw: [SQLRow]) -> Int {
        guard let c = rowsColumn else { return raw.count }
        var n = 0
        for r in raw where r.count > c { n += Int(r[c].int ?? 1) }
        return n
    }

    /// A stream whose rows map one by one.
    init(name: String, select: String, count: String, head: String,
         map: @escaping @Sendable (SQLRow, Int64) -> StreamRow?) {
        self.init(name: name, select: select, count: count, head: head,
                  mapRows: { rows, now in rows.compactMap { map($0, now) } })
    }

    static let pushersOnly = "user_name IN (SELECT user_name FROM pushers)"

    static let pushers = SynapseStream(
        name: "pushers",
        select: """
            SELECT id, user_name, kind, app_id, pushkey, ts, lang, data, profile_tag, app_display_name,
                   device_display_name, enabled
            FROM pushers WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3
            """,
        count: "SELECT COUNT(*) FROM pushers WHERE id > $1 AND id <= $2",
        head: "SELECT COALESCE(MAX(id), 0) FROM pushers",
        map: { row, now in SynapseRows.pusher(row, now: now) })

    static let deletedPushers = SynapseStream(
        name: "deleted_pushers",
        select: """
            SELECT stream_id, user_id, app_id, pushkey FROM deleted_pushers
            WHERE stream_id > $1 AND stream_id <= $2 ORDER BY stream_id LIMIT $3
            """,
        count: "SELECT COUNT(*) FROM deleted_pushers WHERE stream_id > $1 AND stream_id <= $2",
        head: "SELECT COALESCE(MAX(stream_id), 0) FROM deleted_pushers",
        map: { row, _ in SynapseRows.deletedPusher(row) })

    /// Push actions that notify, of users with a pusher, with the event and the context of the
    /// push: room name and canonical alias from `room_stats_state`, member count from
    /// `room_stats_current`, the sender's display name from their current membership (current
    /// state, not the state at the event: they differ only when a name changed since).
    ///
    /// The batch of push actions is taken first (`a`, materialized: its `LIMIT` applies to the
    /// push actions alone). One event notifies every member with a pusher, and their rows differ
    /// only in user, actions, highlight and thread: they are grouped (`g`), one row per event and
    /// (actions, highlight, thread), its users a JSON array and their number in the last column.
    /// A room of 1,000 sends one row for a message where it sent 1,000, each a cell per column
    /// to read and convert.
    ///
    /// The event is looked up for the event's first group only (the one with its first row,
    /// ordered first); the groups after it come without the event's columns (NULL), and
    /// ``SynapseRows/pushActions(_:now:)`` fills them in from it. A `CASE` evaluates its subquery
    /// only when taken. Joined per row, as before, 1,000,000 rows of 5 users took PostgreSQL
    /// 7.7–7.9 s in batches of 20,000 against 4.2–4.6 s so. A row whose event is gone (purged)
    /// comes with no event: it is read, and nothing is appended for it.
    static let pushActions = SynapseStream(
        name: "push_actions",
        select: """
            WITH a AS MATERIALIZED (
              SELECT epa.stream_ordering, epa.user_id, epa.room_id, epa.event_id, epa.actions, epa.highlight,
                     epa.thread_id,
                     COALESCE(LAG(epa.event_id) OVER (ORDER BY epa.stream_ordering, epa.user_id) <> epa.event_id,
                              TRUE) AS first
              FROM event_push_actions epa
              WHERE epa.stream_ordering > $1 AND epa.stream_ordering <= $2 AND epa.notif = 1
                AND epa.user_id IN (SELECT user_name FROM pushers)
              ORDER BY epa.stream_ordering, epa.user_id LIMIT $3),
            g AS (
              SELECT a.stream_ordering, a.room_id, a.event_id, a.actions, a.highlight, a.thread_id,
                     MAX(CASE WHEN a.first THEN 1 ELSE 0 END) AS first, COUNT(*) AS n, %users% AS users
              FROM a GROUP BY a.stream_ordering, a.room_id, a.event_id, a.actions, a.highlight, a.thread_id)
            SELECT g.stream_ordering, g.users, CASE WHEN g.first = 1 THEN g.room_id END,
                   CASE WHEN g.first = 1 THEN g.event_id END, g.actions, g.highlight, g.thread_id,
                   CASE WHEN g.first = 1 THEN (SELECT e.received_ts FROM events e WHERE e.event_id = g.event_id) END,
                   CASE WHEN g.first = 1 THEN (SELECT ej.json FROM event_json ej WHERE ej.event_id = g.event_id) END,
                   CASE WHEN g.first = 1 THEN rss.name END, CASE WHEN g.first = 1 THEN rss.canonical_alias END,
                   CASE WHEN g.first = 1 THEN rsc.joined_members END,
                   CASE WHEN g.first = 1 THEN
                     (SELECT rm.display_name FROM events e
                        JOIN current_state_events cse ON cse.room_id = g.room_id AND cse.type = 'm.room.member'
                         AND cse.state_key = e.sender
                        JOIN room_memberships rm ON rm.event_id = cse.event_id
                       WHERE e.event_id = g.event_id) END,
                   g.n
            FROM g
            LEFT JOIN room_stats_state rss ON rss.room_id = g.room_id
            LEFT JOIN room_stats_current rsc ON rsc.room_id = g.room_id
            ORDER BY g.stream_ordering, g.first DESC, g.users
            """,
        count: """
            SELECT COUNT(*) FROM event_push_actions
            WHERE stream_ordering > $1 AND stream_ordering <= $2 AND notif = 1
              AND user_id IN (SELECT user_name FROM pushers)
            """,
        head: "SELECT COALESCE(MAX(stream_ordering), 0) FROM event_push_actions",
        rowsColumn: 13,
        boundary: """
            SELECT stream_ordering FROM event_push_actions
            WHERE stream_ordering > $1 AND stream_ordering <= $2 AND notif = 1
              AND user_id IN (SELECT user_name FROM pushers)
            ORDER BY stream_ordering LIMIT 1 OFFSET $3
            """,
        mapRows: { rows, now in SynapseRows.pushActions(rows, now: now) })

    /// `m.read` and `m.read.private` of users with a pusher. Synapse keeps one row per (room,
    /// type, user, thread) and gives it a new stream id on every change.
    static let receipts = SynapseStream(
        name: "receipts",
        select: """
            SELECT r.stream_id, r.user_id, r.room_id, r.event_id, r.receipt_type, r.thread_id, r.data,
                   COALESCE(r.event_stream_ordering, e.stream_ordering)
            FROM receipts_linearized r LEFT JOIN events e ON e.event_id = r.event_id
            WHERE r.stream_id > $1 AND r.stream_id <= $2 AND r.receipt_type IN ('m.read', 'm.read.private')
              AND r.user_id IN (SELECT user_name FROM pushers)
            ORDER BY r.stream_id LIMIT $3
            """,
        count: """
            SELECT COUNT(*) FROM receipts_linearized
            WHERE stream_id > $1 AND stream_id <= $2 AND receipt_type IN ('m.read', 'm.read.private')
              AND user_id IN (SELECT user_name FROM pushers)
            """,
        head: "SELECT COALESCE(MAX(stream_id), 0) FROM receipts_linearized",
        map: { row, now in SynapseRows.receipt(row, now: now) })
}

/// Rows to log entries, through the same decoder as the HTTP API, so what the follower appends
/// is what a POST of the same JSON would.
enum SynapseRows {
    static func pusher(_ r: SQLRow, now: Int64) -> StreamRow? {
        guard r.count >= 12, let id = r[0].int, let user = r[1].text else { return nil }
        var row = StreamRow(position: id, identity: "", userID: user, entry: nil)
        guard let kind = r[2].text, kind == "http" || kind == "email" else { return row }
        var data: JSON = .object([:])
        if let text = r[7].text, let parsed = try? JSON.parse(text), parsed.objectValue != nil { data = parsed }
        var o: [String: JSON] = [
            "user_id": .string(user), "kind": .string(kind), "app_id": .string(r[3].text ?? ""),
            "pushkey": .string(r[4].text ?? ""), "app_display_name": .string(r[9].text ?? ""),
            "device_display_name": .string(r[10].text ?? ""), "lang": .string(r[6].text ?? "en"), "data": data,
            // Synapse removes other users' pushers of the same key itself: those come as deletions.
            "append": .bool(true),
            "enabled": .bool(r[11].bool ?? true),
        ]
        if let tag = r[8].text, !tag.isEmpty { o["profile_tag"] = .string(tag) }
        // Synapse's `ts` is the pusher's (re)registration time: `pushkey_ts` in the push.
        row.entry = try? EntryDecoder.pusher(.object(o), now: r[5].int ?? now)
        return row
    }

    static func deletedPusher(_ r: SQLRow) -> StreamRow? {
        guard r.count >= 4, let id = r[0].int, let user = r[1].text, let app = r[2].text, let key = r[3].text else { return nil }
        return StreamRow(position: id, identity: "", userID: user,
                         entry: .pusherRemoved(PusherID(userID: user, appID: app, pushkey: key)))
    }

    /// Synapse stores its two most common action lists as an empty string
    /// (`_serialize_action` / `_deserialize_action`).
    static let defaultNotifyActions: [JSON] = [.string("notify"), .object(["set_tweak": .string("highlight"), "value": .bool(false)])]
    static let defaultHighlightActions: [JSON] = [
        .string("notify"), .object(["set_tweak": .string("sound"), "value": .string("default")]),
        .object(["set_tweak": .string("highlight")]),
    ]

    /// Push actions in the order read: a row per event and (actions, highlight, thread), its
    /// users a JSON array (column 1), the event's columns with the event's first row only. The
    /// event is parsed and the notification decoded once per row, then given to each user of the
    /// row whose id passes the decoder's check (the only input that differs). What each user
    /// gets is what ``pushAction(_:now:)`` alone makes of the row with that user, its event's
    /// columns filled in. A position's users come out in byte order of their ids, as the table's
    /// rows were read before they were grouped.
    ///
    /// A row's event columns are filled in where it is (`rows` is consumed: a row taken out and
    /// changed would be copied whole, every string of it retained).
    static func pushActions(_ rows: consuming [SQLRow], now: Int64) -> [StreamRow] {
        var rows = rows
        var out: [StreamRow] = []
        out.reserveCapacity(SynapseStream.pushActions.tableRows(rows))  // a row per user
        var shared: Int?  // the last row that came with its event's columns
        var position: Int64?
        var positionStart = 0  // where this position's rows begin in `out`
        var groups = 0  // this position's rows read
        func sortPosition() {
            if groups > 1 {
                out[positionStart...].sort { $0.userID.utf8.lexicographicallyPrecedes($1.userID.utf8) }
            }
        }
        for i in rows.indices where rows[i].count >= 14 {
            // No event id: a later row of the event before it.
            if case .null = rows[i][3], let s = shared {
                for c in Self.eventColumns { rows[i][c] = rows[s][c] }
            } else {
                shared = i
            }
            guard let so = rows[i][0].int, let users = Self.users(rows[i][1]) else { continue }
            if so != position {
                sortPosition()
                position = so
                positionStart = out.count
                groups = 0
            }
            groups += 1
            var decoded: PushNotification?
            for user in users {
                if let n = decoded {
                    var row = StreamRow(position: so, identity: user, userID: user, entry: nil, receivedTS: rows[i][7].int)
                    if (try? EntryDecoder.checkID(user, field: "user_id")) != nil {
                        var m = n
                        m.userID = user
                        row.entry = .notification(m)
                    }
                    out.append(row)
                    continue
                }
                var r = rows[i]
                r[1] = .text(user)
                guard let row = pushAction(r, now: now) else { continue }
                if case .notification(let n)? = row.entry { decoded = n }
                out.append(row)
            }
        }
        sortPosition()
        return out
    }

    /// A row's users: a JSON array of strings, sorted by their bytes.
    static func users(_ v: SQLValue) -> [String]? {
        guard let text = v.text, case .array(let items)? = try? JSON.parse(text) else { return nil }
        var users: [String] = []
        users.reserveCapacity(items.count)
        for item in items {
            guard case .string(let user) = item else { return nil }
            users.append(user)
        }
        users.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        return users
    }

    /// The columns of a push-action row that belong to its event (the same for every user it
    /// notifies): room, event id, received time, event JSON, room name, alias, member count and
    /// the sender's display name.
    static let eventColumns = [2, 3, 7, 8, 9, 10, 11, 12]

    static func pushAction(_ r: SQLRow, now: Int64) -> StreamRow? {
        guard r.count >= 13, let so = r[0].int, let user = r[1].text, let room = r[2].text, let eventID = r[3].text else {
            return nil
        }
        var row = StreamRow(position: so, identity: user, userID: user, entry: nil, receivedTS: r[7].int)
        var actions: [JSON]
        if let text = r[4].text, !text.isEmpty, case .array(let parsed)? = try? JSON.parse(text) {
            actions = parsed
        } else {
            actions = (r[5].int ?? 0) != 0 ? defaultHighlightActions : defaultNotifyActions
        }
        guard let eventText = r[8].text, case .object(let full)? = try? JSON.parse(eventText) else { return row }
        var event: [String: JSON] = [:]
        for key in ["type", "sender", "content", "state_key", "origin_server_ts"] where full[key] != nil && full[key] != .null {
            event[key] = full[key]
        }
        var context: [String: JSON] = [:]
        if let name = r[9].text { context["room_name"] = .string(name) }
        if let alias = r[10].text {
            context["room_alias"] = .string(alias)
            if context["room_name"] == nil { context["room_name"] = .string(alias) }
        }
        if let members = r[11].int { context["member_count"] = .int(members) }
        if let display = r[12].text, !display.isEmpty { context["sender_display_name"] = .string(display) }
        var o: [String: JSON] = [
            "user_id": .string(user), "room_id": .string(room), "event_id": .string(eventID),
            "stream_ordering": .int(so), "actions": .array(actions), "thread_id": .string(r[6].text ?? "main"),
            "event": .object(event),
        ]
        if let ts = r[7].int { o["received_ts"] = .int(ts) }
        if !context.isEmpty { o["context"] = .object(context) }
        if let n = try? EntryDecoder.notification(.object(o), now: now) {
            row.entry = .notification(n)
        } else {
            // Too large or odd for the API (a huge event, an over-long name): the push still goes
            // out, without content and context, as an `event_id_only` push would.
            event["content"] = nil
            o["event"] = .object(event)
            o["context"] = nil
            if let n = try? EntryDecoder.notification(.object(o), now: now) { row.entry = .notification(n) }
        }
        return row
    }

    static func receipt(_ r: SQLRow, now: Int64) -> StreamRow? {
        guard r.count >= 8, let id = r[0].int, let user = r[1].text else { return nil }
        var row = StreamRow(position: id, identity: "", userID: user, entry: nil)
        guard let room = r[2].text, let eventID = r[3].text, let type = r[4].text, let so = r[7].int else { return row }
        var o: [String: JSON] = [
            "user_id": .string(user), "room_id": .string(room), "event_id": .string(eventID),
            "stream_ordering": .int(so), "receipt_type": .string(type),
        ]
        if let thread = r[5].text { o["thread_id"] = .string(thread) }
        if let data = r[6].text, case .object(let d)? = try? JSON.parse(data), let ts = d["ts"]?.intValue { o["ts"] = .int(ts) }
        if let receipt = try? EntryDecoder.receipt(.object(o), now: now) { row.entry = .receipt(receipt) }
        return row
    }
}
