import Foundation
import LMDB
import PushlogCore
import TestSupport

/// A store in a fresh temp directory, closed and removed when `body` returns.
func withStore<T>(mapSize: Int = 1 << 20, _ body: (Store) throws -> T) throws -> T {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-core-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let store = try Store(dataDir: dir, options: StoreOptions(durability: .nometasync, mapSize: mapSize))
    defer { store.close() }
    return try body(store)
}

func withStore<T>(mapSize: Int = 1 << 20, _ body: (Store) async throws -> T) async throws -> T {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-core-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let store = try Store(dataDir: dir, options: StoreOptions(durability: .nometasync, mapSize: mapSize))
    defer { store.close() }
    return try await body(store)
}

let gatewayURL = "https://push.example.org/_matrix/push/v1/notify"

/// Builders for log entries with sensible defaults.
enum Make {
    static func notification(_ user: String, room: String = "!room:example.org", so: Int64, thread: String = "main",
                             event: String? = nil, actions: [JSON] = [.string("notify")],
                             receivedTS: Int64 = 1_700_000_000_000) -> PushNotification {
        PushNotification(userID: user, roomID: room, eventID: event ?? "$e\(so)", streamOrdering: so, actions: actions,
                     threadID: thread, receivedTS: receivedTS,
                     event: ["type": .string("m.room.message"), "sender": .string("@bob:example.org"),
                             "content": .object(["msgtype": .string("m.text"), "body": .string("hi \(so)")])])
    }

    static func notify(_ user: String, room: String = "!room:example.org", so: Int64, thread: String = "main",
                       actions: [JSON] = [.string("notify")]) -> LogEntry {
        .notification(notification(user, room: room, so: so, thread: thread, actions: actions))
    }

    static func receipt(_ user: String, room: String = "!room:example.org", so: Int64, thread: String? = nil,
                        type: ReceiptType = .read) -> LogEntry {
        .receipt(Receipt(userID: user, roomID: room, eventID: "$r\(so)", streamOrdering: so, receiptType: type,
                         threadID: thread, ts: 1_700_000_000_000))
    }

    static func pusher(_ user: String, app: String = "org.example.app", key: String? = nil, kind: PusherKind = .http,
                       enabled: Bool = true, append: Bool = false, createdTS: Int64 = 1_000,
                       name: String = "phone") -> PusherConfig {
        PusherConfig(id: PusherID(userID: user, appID: app, pushkey: key ?? "key-\(user)"), kind: kind,
                     appDisplayName: "App", deviceDisplayName: name, lang: "en",
                     data: kind == .http ? ["url": .string(gatewayURL)] : [:],
                     append: append, enabled: enabled, createdTS: createdTS)
    }

    static func set(_ user: String, app: String = "org.example.app", key: String? = nil, enabled: Bool = true,
                    append: Bool = false, createdTS: Int64 = 1_000, name: String = "phone") -> LogEntry {
        .pusherSet(pusher(user, app: app, key: key, enabled: enabled, append: append, createdTS: createdTS, name: name))
    }
}

extension Store {
    /// Sets a pusher's cursor, keeping the rest of its consumer state.
    func setCursor(_ id: PusherID, _ cursor: UInt64) throws {
        try write { ctx in
            guard var s = try ctx.consumerState(id) else { throw TestFailure("no consumer state for \(id)") }
            s.cursor = cursor
            try ctx.setConsumerState(id, s)
        }
    }

    func cursor(_ id: PusherID) throws -> UInt64? {
        try write { ctx in try ctx.consumerState(id)?.cursor }
    }

    func allEntries() throws -> [LoggedEntry] {
        var out: [LoggedEntry] = []
        try read { view in try view.forEachEntry { out.append($0); return true } }
        return out
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

