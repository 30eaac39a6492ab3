/// "User U should be told about event E in room R."
public struct PushNotification: Sendable, Equatable {
    public var userID: String
    public var roomID: String
    public var eventID: String
    public var streamOrdering: Int64
    /// Matrix push-rule actions, e.g. `["notify", {"set_tweak": "sound", "value": "default"}]`.
    public var actions: [JSON]
    public var threadID: String
    /// Milliseconds; when the homeserver received the event.
    public var receivedTS: Int64
    /// `{"type", "sender", "content", "state_key"?, "origin_server_ts"?}`
    public var event: [String: JSON]
    public var context: [String: JSON]?

    public init(userID: String, roomID: String, eventID: String, streamOrdering: Int64,
                actions: [JSON] = [.string("notify")], threadID: String = "main", receivedTS: Int64,
                event: [String: JSON], context: [String: JSON]? = nil) {
        self.userID = userID
        self.roomID = roomID
        self.eventID = eventID
        self.streamOrdering = streamOrdering
        self.actions = actions
        self.threadID = threadID
        self.receivedTS = receivedTS
        self.event = event
        self.context = context
    }

    /// An entry whose actions lack `"notify"` is logged but never pushed.
    public var notifies: Bool { actions.contains(.string("notify")) }

    /// The value of the first `highlight` tweak (true when it has no value).
    public var highlights: Bool {
        for case .object(let a) in actions where a["set_tweak"] == .string("highlight") {
            return a["value"].map { $0.isTruthy } ?? true
        }
        return false
    }
}

public enum ReceiptType: String, Sendable, CaseIterable {
    case read = "m.read"
    case readPrivate = "m.read.private"
}

/// "User U has read room R up to the event with stream ordering S" (in one thread, or all).
public struct Receipt: Sendable, Equatable {
    public var userID: String
    public var roomID: String
    public var eventID: String
    public var streamOrdering: Int64
    public var receiptType: ReceiptType
    /// nil: the receipt covers every thread of the room.
    public var threadID: String?
    public var ts: Int64

    public init(userID: String, roomID: String, eventID: String, streamOrdering: Int64,
                receiptType: ReceiptType = .read, threadID: String? = nil, ts: Int64) {
        self.userID = userID
        self.roomID = roomID
        self.eventID = eventID
        self.streamOrdering = streamOrdering
        self.receiptType = receiptType
        self.threadID = threadID
        self.ts = ts
    }
}

public enum PusherKind: String, Sendable, CaseIterable {
    case http
    case email

    var code: UInt8 { self == .http ? 0 : 1 }
    init?(code: UInt8) {
        switch code {
        case 0: self = .http
        case 1: self = .email
        default: return nil
        }
    }
}

/// The identity of a pusher.
public struct PusherID: Sendable, Hashable, Comparable {
    public var userID: String
    public var appID: String
    public var pushkey: String

    public init(userID: String, appID: String, pushkey: String) {
        self.userID = userID
        self.appID = appID
        self.pushkey = pushkey
    }

    public static func < (a: PusherID, b: PusherID) -> Bool {
        (a.userID, a.appID, a.pushkey) < (b.userID, b.appID, b.pushkey)
    }
}

/// A pusher's configuration: the Matrix `pushers/set` body plus its owner.
public struct PusherConfig: Sendable, Equatable {
    public var id: PusherID
    public var kind: PusherKind
    public var appDisplayName: String
    public var deviceDisplayName: String
    public var lang: String
    public var profileTag: String?
    public var data: [String: JSON]
    /// `false` removes other users' pushers with the same (app_id, pushkey).
    public var append: Bool
    public var enabled: Bool
    /// Milliseconds; set when the pusher is first created, kept across updates (`pushkey_ts`).
    public var createdTS: Int64

    public init(id: PusherID, kind: PusherKind, appDisplayName: String = "", deviceDisplayName: String = "",
                lang: String = "en", profileTag: String? = nil, data: [String: JSON] = [:],
                append: Bool = false, enabled: Bool = true, createdTS: Int64 = 0) {
        self.id = id
        self.kind = kind
        self.appDisplayName = appDisplayName
        self.deviceDisplayName = deviceDisplayName
        self.lang = lang
        self.profileTag = profileTag
        self.data = data
        self.append = append
        self.enabled = enabled
        self.createdTS = createdTS
    }
}

/// One entry of the log.
public enum LogEntry: Sendable, Equatable {
    case notification(PushNotification)
    case receipt(Receipt)
    case pusherSet(PusherConfig)
    case pusherRemoved(PusherID)

    public var typeName: String {
        switch self {
        case .notification: "notification"
        case .receipt: "receipt"
        case .pusherSet: "pusher_set"
        case .pusherRemoved: "pusher_removed"
        }
    }

    public var userID: String {
        switch self {
        case .notification(let n): n.userID
        case .receipt(let r): r.userID
        case .pusherSet(let p): p.id.userID
        case .pusherRemoved(let id): id.userID
        }
    }
}

/// An entry as stored: its position and append time (ms).
public struct LoggedEntry: Sendable, Equatable {
    public var pos: UInt64
    public var ts: Int64
    public var entry: LogEntry

    public init(pos: UInt64, ts: Int64, entry: LogEntry) {
        self.pos = pos
        self.ts = ts
        self.entry = entry
    }
}
