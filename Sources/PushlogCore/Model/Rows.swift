/// The JSON shapes of the contract: entries as `replay` prints them, pushers and their state as
/// `pushers list`, `cursors` and the API show them. Absent values are `null`, never left out.
extension PusherConfig {
    /// The API's `Pusher` fields, flat.
    public var fields: [String: JSON] {
        [
            "user_id": .string(id.userID), "kind": .string(kind.rawValue), "app_id": .string(id.appID),
            "pushkey": .string(id.pushkey), "app_display_name": .string(appDisplayName),
            "device_display_name": .string(deviceDisplayName), "lang": .string(lang),
            "profile_tag": profileTag.map(JSON.string) ?? .null, "data": .object(data),
            "append": .bool(append), "enabled": .bool(enabled), "pushkey_ts": .int(createdTS / 1000),
        ]
    }
}

extension PusherState {
    public var json: JSON {
        var o = config.fields
        o["cursor"] = .int(Int64(state.cursor))
        o["head"] = .int(Int64(head))
        o["pending"] = .int(Int64(pending))
        o["failing_since"] = state.failingSince.map(JSON.int) ?? .null
        o["last_success"] = state.lastSuccess.map(JSON.int) ?? .null
        o["next_attempt_ts"] = state.nextAttempt.map(JSON.int) ?? .null
        o["last_badge"] = state.lastBadge.map(JSON.int) ?? .null
        return .object(o)
    }
}

extension LoggedEntry {
    /// `{"pos", "type", "ts" (append time), …the entry's fields}`. A receipt's own `ts` is
    /// given as `receipt_ts`, since `ts` is the append time in every row.
    public var json: JSON {
        var o: [String: JSON]
        switch entry {
        case .notification(let n):
            o = [
                "user_id": .string(n.userID), "room_id": .string(n.roomID), "event_id": .string(n.eventID),
                "stream_ordering": .int(n.streamOrdering), "actions": .array(n.actions),
                "thread_id": .string(n.threadID), "received_ts": .int(n.receivedTS), "event": .object(n.event),
                "context": n.context.map(JSON.object) ?? .null,
            ]
        case .receipt(let r):
            o = [
                "user_id": .string(r.userID), "room_id": .string(r.roomID), "event_id": .string(r.eventID),
                "stream_ordering": .int(r.streamOrdering), "receipt_type": .string(r.receiptType.rawValue),
                "thread_id": r.threadID.map(JSON.string) ?? .null, "receipt_ts": .int(r.ts),
            ]
        case .pusherSet(let c):
            o = c.fields
        case .pusherRemoved(let id):
            o = ["user_id": .string(id.userID), "app_id": .string(id.appID), "pushkey": .string(id.pushkey), "kind": .null]
        }
        o["pos"] = .int(Int64(pos))
        o["type"] = .string(entry.typeName)
        o["ts"] = .int(ts)
        return .object(o)
    }
}
