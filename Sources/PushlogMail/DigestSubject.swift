import PushlogCore

/// The subject line, in the spirit of Synapse's rules (reference §4.6) with our data: a room's
/// explicit name is `room_name` or `room_alias` from the context; a sender's name is their
/// display name from the context, else their MXID.
enum DigestSubject {
    static func make(app: String, rooms: DigestRooms, reasonRoomID: String) -> String {
        fold(text(app: app, rooms: rooms, reasonRoomID: reasonRoomID))
    }

    private static func text(app: String, rooms: DigestRooms, reasonRoomID: String) -> String {
        let prefix = "[\(app)]"
        guard let first = rooms.rooms.first else { return "\(prefix) You have messages on \(app)" }
        if rooms.rooms.count == 1 {
            let room = first
            if let invite = room.notifications.last(where: rooms.isInvite) {
                let inviter = rooms.senderName(invite)
                if let name = room.explicitName {
                    return "\(prefix) \(inviter) has invited you to join the \(name) room on \(app)"
                }
                return "\(prefix) \(inviter) has invited you to chat on \(app)"
            }
            if room.notifications.count == 1 {
                let sender = rooms.senderName(room.notifications[0])
                if let name = room.explicitName {
                    return "\(prefix) You have a message on \(app) from \(sender) in the \(name) room"
                }
                return "\(prefix) You have a message on \(app) from \(sender)"
            }
            if let name = room.explicitName {
                return "\(prefix) You have messages on \(app) in the \(name) room"
            }
            return fromSenders(prefix: prefix, app: app, rooms: rooms, roomID: room.roomID, first: room)
        }
        if let reasonRoom = rooms.room(reasonRoomID), let name = reasonRoom.explicitName {
            return "\(prefix) You have messages on \(app) in the \(name) room and others"
        }
        // Synapse names only the reason room's senders here; every room's count ("and others").
        return fromSenders(prefix: prefix, app: app, rooms: rooms, roomID: reasonRoomID, first: rooms.room(reasonRoomID))
    }

    /// "from Bob" or "from Bob and others": distinct senders, the `first` room's newest first.
    private static func fromSenders(prefix: String, app: String, rooms: DigestRooms, roomID: String,
                                    first: DigestRooms.Room?) -> String {
        var senders: [String] = []
        let ordered = (first?.notifications ?? []).reversed() + rooms.all.reversed()
        for n in ordered {
            let sender = rooms.senderID(n)
            if !sender.isEmpty, !senders.contains(sender) { senders.append(sender) }
        }
        guard let newest = senders.first else { return "\(prefix) You have messages on \(app) in the \(roomID) room" }
        let name = rooms.name(ofSender: newest)
        return senders.count == 1
            ? "\(prefix) You have messages on \(app) from \(name)"
            : "\(prefix) You have messages on \(app) from \(name) and others"
    }

    /// One line of plain text: line breaks (and tabs) become one space, other controls go.
    static func fold(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        var pendingSpace = false
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0A, 0x0D, 0x09, 0x85, 0x2028, 0x2029:
                pendingSpace = true
            case 0x00..<0x20, 0x7F:
                continue
            default:
                if pendingSpace, !out.isEmpty, out.last != " ", scalar != " " { out.append(" ") }
                pendingSpace = false
                out.append(scalar)
            }
        }
        return String(out)
    }
}
