// What the digest templates see. Property names are the template variables (snake_case, as
// templates spell them), looked up by swift-mustache through `child(named:)` (DigestView+Mustache.swift). Names are unique across
// levels on purpose: a nil value makes Mustache look further up the stack, and must not find a
// same-named value of the enclosing room or email.

/// The top level of `notif_mail.html` / `notif_mail.txt`.
struct DigestView {
    var app_name: String
    var user_id: String
    var user_display_name: String
    /// The subject line.
    var summary: String
    /// The subject without its "[App] " tag: the email's heading.
    var headline: String
    var unsubscribe_link: String
    var rooms: [RoomView]
    /// Rooms beyond the cap: how many, and how many notifications they hold.
    var more_rooms: MoreRoomsView?
    var reason: ReasonView
}

struct MoreRoomsView {
    var count: Int
    var plural: Bool
    var messages: Int
    var messages_plural: Bool
}

struct ReasonView {
    var room_id: String
    var room_name: String
    var room_link: String
    /// When the notification that made the email due was received.
    var received_at: String
    /// `email.delay_before_mail`, in words ("10 minutes").
    var delay: String
    var delay_before_mail_ms: Int64
    /// When we last emailed about the room; absent the first time.
    var last_sent_at: String?
    var last_sent_ts: Int64?
    /// The room's throttle, in words ("24 hours"); absent with `last_sent_at`.
    var throttle: String?
    var throttle_ms: Int64?
    var now: String
}

struct RoomView {
    var room_id: String
    var title: String
    var room_link: String
    var room_avatar_url: String?
    /// Invites of the user into this room, shown as "X invited you to …, join at …".
    var invites: [InviteView]
    var messages: [MessageView]
    /// Messages beyond the cap.
    var more_messages: MoreMessagesView?
}

struct MoreMessagesView {
    var count: Int
    var plural: Bool
}

struct InviteView {
    var inviter_id: String
    var inviter_name: String
    var room_title: String
    var invite_link: String
    var time: String
}

/// One message. Exactly one of `is_text`, `is_image`, `is_encrypted`, `is_unrecognised` is true.
struct MessageView {
    var event_id: String
    var event_link: String
    var sender_id: String
    var sender_name: String
    var sender_avatar_url: String?
    var time: String
    var ts: Int64
    var is_text: Bool
    var is_emote: Bool
    var is_image: Bool
    var is_encrypted: Bool
    var is_unrecognised: Bool
    /// The plain body (text part; image alt text). Never HTML.
    var body_text: String
    /// The body as safe HTML: sanitised `formatted_body`, or the escaped plain body.
    var body_html: String
    var image_url: String?
}
