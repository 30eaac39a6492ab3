import PushlogCore

/// Turns a `Digest` into the subject, text and HTML of one email.
///
/// Rooms come newest activity first, messages in a room oldest first. A long digest is
/// summarised, never cut silently: past `maxRooms` rooms the email says "and N more rooms with M
/// unread messages", and past `maxMessagesPerRoom` in a room it shows the newest ones and says how
/// many earlier ones it leaves out (Synapse mails the 20 newest and never mentions the rest).
public struct DigestRenderer: Sendable {
    public var templates: EmailTemplates
    /// Rooms shown in full; the rest are counted. At least 1.
    public var maxRooms: Int
    /// Messages shown per room (the newest); the earlier ones are counted. At least 1.
    public var maxMessagesPerRoom: Int

    public init(templates: EmailTemplates, maxRooms: Int = 10, maxMessagesPerRoom: Int = 10) {
        self.templates = templates
        self.maxRooms = maxRooms
        self.maxMessagesPerRoom = maxMessagesPerRoom
    }

    public func render(_ digest: Digest) -> RenderedDigest {
        let rooms = DigestRooms(userID: digest.userID, notifications: digest.notifications)
        let subject = DigestSubject.make(app: digest.appName, rooms: rooms, reasonRoomID: digest.reason.roomID)
        let view = makeView(digest, rooms: rooms, subject: subject)
        return RenderedDigest(
            subject: subject,
            text: templates.render(EmailTemplates.textTemplateName, view),
            html: templates.render(EmailTemplates.htmlTemplateName, view))
    }

    // MARK: - The templates' view

    func makeView(_ digest: Digest, rooms: DigestRooms, subject: String) -> DigestView {
        let links = MatrixLinks(clientBaseURL: digest.clientBaseURL, publicBaseURL: digest.publicBaseURL)
        let shown = rooms.rooms.prefix(max(1, maxRooms))
        let hidden = rooms.rooms.dropFirst(shown.count)
        let hiddenCount = hidden.reduce(0) { $0 + $1.notifications.count + digest.omittedPerRoom[$1.roomID, default: 0] }
        let reason = digest.reason
        let sentBefore = (reason.lastSentTS ?? 0) > 0 && (reason.throttleMS ?? 0) > 0
        return DigestView(
            app_name: digest.appName,
            user_id: digest.userID,
            user_display_name: digest.userDisplayName ?? digest.userID,
            summary: subject,
            headline: Self.headline(subject, app: digest.appName),
            unsubscribe_link: digest.unsubscribeLink,
            rooms: shown.map { roomView($0, rooms: rooms, links: links, omitted: digest.omittedPerRoom[$0.roomID, default: 0]) },
            more_rooms: hidden.isEmpty ? nil : MoreRoomsView(
                count: hidden.count, plural: hidden.count != 1, messages: hiddenCount, messages_plural: hiddenCount != 1),
            reason: ReasonView(
                room_id: reason.roomID,
                room_name: rooms.room(reason.roomID)?.title ?? reason.roomID,
                room_link: links.room(reason.roomID),
                received_at: MailTime.format(reason.receivedAt),
                delay: MailTime.duration(reason.delayBeforeMail),
                delay_before_mail_ms: reason.delayBeforeMail,
                last_sent_at: sentBefore ? MailTime.format(reason.lastSentTS!) : nil,
                last_sent_ts: sentBefore ? reason.lastSentTS : nil,
                throttle: sentBefore ? MailTime.duration(reason.throttleMS!) : nil,
                throttle_ms: sentBefore ? reason.throttleMS : nil,
                now: MailTime.format(digest.now)))
    }

    /// The subject without its "[App] " tag, for the heading of the email.
    static func headline(_ subject: String, app: String) -> String {
        let tag = "[\(DigestSubject.fold(app))] "
        return subject.hasPrefix(tag) ? String(subject.dropFirst(tag.count)) : subject
    }

    /// `omitted`: the room's notifications not loaded at all, counted with the earlier ones.
    private func roomView(_ room: DigestRooms.Room, rooms: DigestRooms, links: MatrixLinks, omitted: Int) -> RoomView {
        let roomLink = links.room(room.roomID)
        let invites = room.notifications.filter(rooms.isInvite).map { n in
            InviteView(
                inviter_id: rooms.senderID(n), inviter_name: rooms.senderName(n), room_title: room.title,
                invite_link: roomLink, time: MailTime.format(n.receivedTS))
        }
        let messages = room.notifications.enumerated()
            .filter { !rooms.isInvite($0.element) }
            .sorted { ($0.element.receivedTS, $0.offset) < ($1.element.receivedTS, $1.offset) }
            .map(\.element)
        let shown = messages.suffix(max(1, maxMessagesPerRoom))
        let earlier = messages.count - shown.count + omitted
        return RoomView(
            room_id: room.roomID,
            title: room.title,
            room_link: roomLink,
            room_avatar_url: room.avatarMXC.flatMap { links.thumbnail($0, width: 48, height: 48, method: "crop") },
            invites: invites,
            messages: shown.map { messageView($0, rooms: rooms, links: links) },
            more_messages: earlier > 0 ? MoreMessagesView(count: earlier, plural: earlier != 1) : nil)
    }

    private func messageView(_ n: PushNotification, rooms: DigestRooms, links: MatrixLinks) -> MessageView {
        let senderName = rooms.senderName(n)
        let ts = n.event["origin_server_ts"]?.intValue ?? n.receivedTS
        var view = MessageView(
            event_id: n.eventID,
            event_link: links.event(n.eventID, in: n.roomID),
            sender_id: rooms.senderID(n),
            sender_name: senderName,
            sender_avatar_url: n.context?["sender_avatar_url"]?.stringValue
                .flatMap { links.thumbnail($0, width: 32, height: 32, method: "crop") },
            time: MailTime.format(ts),
            ts: ts,
            is_text: false, is_emote: false, is_image: false, is_encrypted: false, is_unrecognised: false,
            body_text: "", body_html: "", image_url: nil)
        let content = n.event["content"]?.objectValue ?? [:]
        switch n.event["type"]?.stringValue {
        case "m.room.encrypted":
            view.is_encrypted = true
        case "m.room.message":
            guard let fullBody = content["body"]?.stringValue else {
                view.is_unrecognised = true
                return view
            }
            let msgtype = content["msgtype"]?.stringValue
            let isReply = content["m.relates_to"]?["m.in_reply_to"] != nil
            let body = isReply ? Self.withoutReplyFallback(fullBody) : fullBody
            view.body_text = body
            if msgtype == "m.image", let url = content["url"]?.stringValue,
                let thumbnail = links.thumbnail(url, width: 640, height: 480, method: "scale") {
                view.is_image = true
                view.image_url = thumbnail
                return view
            }
            view.is_text = true
            view.is_emote = msgtype == "m.emote"
            if ["m.text", "m.notice", "m.emote"].contains(msgtype),
                content["format"]?.stringValue == "org.matrix.custom.html",
                let formatted = content["formatted_body"]?.stringValue, !formatted.isEmpty {
                view.body_html = HTMLSanitizer.sanitize(formatted) { src in
                    links.thumbnail(src, width: 640, height: 480, method: "scale")
                }
            } else {
                view.body_html = HTMLSanitizer.plainToHTML(body)
            }
        default:
            view.is_unrecognised = true
        }
        return view
    }

    /// A reply's body without the quoted fallback older clients put first (`> ` lines, then a
    /// blank line), as clients show it; the HTML side drops `<mx-reply>` likewise.
    static func withoutReplyFallback(_ body: String) -> String {
        let lines = body.split(separator: "\n", omittingEmptySubsequences: false)
        let quoted = lines.prefix { $0.hasPrefix(">") }.count
        guard quoted > 0, quoted < lines.count, lines[quoted].isEmpty else { return body }
        return lines.dropFirst(quoted + 1).joined(separator: "\n")
    }
}
