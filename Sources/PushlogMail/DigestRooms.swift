import PushlogCore

/// A digest's notifications grouped by room, with the names the email shows.
struct DigestRooms {
    struct Room {
        let roomID: String
        /// Log order.
        var notifications: [PushNotification] = []
        var newestReceivedTS: Int64 = .min
        var newestLogIndex = 0
        /// `room_name`, else `room_alias`, of the newest context that has either; nil when none does.
        var explicitName: String?
        var avatarMXC: String?

        init(roomID: String) { self.roomID = roomID }

        var title: String { explicitName ?? roomID }
    }

    let userID: String
    /// Every notification, in log order.
    let all: [PushNotification]
    /// Newest activity first (the newest `received_ts`; later in the log first on a tie).
    let rooms: [Room]
    /// Each sender's newest known display name.
    private let displayNames: [String: String]

    init(userID: String, notifications: [PushNotification]) {
        self.userID = userID
        self.all = notifications
        var byID: [String: Room] = [:]
        var order: [String] = []
        var names: [String: String] = [:]
        for (index, n) in notifications.enumerated() {
            if byID[n.roomID] == nil {
                byID[n.roomID] = Room(roomID: n.roomID)
                order.append(n.roomID)
            }
            byID[n.roomID]!.notifications.append(n)
            if n.receivedTS >= byID[n.roomID]!.newestReceivedTS {
                byID[n.roomID]!.newestReceivedTS = n.receivedTS
                byID[n.roomID]!.newestLogIndex = index
            }
            // Later entries overwrite earlier ones: the newest context wins.
            if let name = Self.nonEmpty(n.context?["room_name"]) ?? Self.nonEmpty(n.context?["room_alias"]) {
                byID[n.roomID]!.explicitName = name
            }
            if let avatar = Self.nonEmpty(n.context?["room_avatar_url"]) { byID[n.roomID]!.avatarMXC = avatar }
            if let sender = n.event["sender"]?.stringValue, let name = Self.nonEmpty(n.context?["sender_display_name"]) {
                names[sender] = name
            }
        }
        rooms = order.compactMap { byID[$0] }.sorted {
            ($0.newestReceivedTS, $0.newestLogIndex) > ($1.newestReceivedTS, $1.newestLogIndex)
        }
        displayNames = names
    }

    func room(_ roomID: String) -> Room? { rooms.first { $0.roomID == roomID } }

    /// An invite of the digest's user: a member event with `membership: invite` whose state key is the user.
    func isInvite(_ n: PushNotification) -> Bool {
        n.event["type"]?.stringValue == "m.room.member"
            && n.event["content"]?["membership"]?.stringValue == "invite"
            && n.event["state_key"]?.stringValue == userID
    }

    func senderID(_ n: PushNotification) -> String { n.event["sender"]?.stringValue ?? "" }

    /// The notification's own `sender_display_name`, else the sender's newest known one, else the MXID.
    func senderName(_ n: PushNotification) -> String {
        Self.nonEmpty(n.context?["sender_display_name"]) ?? displayNames[senderID(n)] ?? senderID(n)
    }

    /// The sender's newest known display name, else the MXID.
    func name(ofSender sender: String) -> String { displayNames[sender] ?? sender }

    private static func nonEmpty(_ value: JSON?) -> String? {
        guard let s = value?.stringValue, !s.isEmpty else { return nil }
        return s
    }
}
