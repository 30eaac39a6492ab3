import Mustache

// Lookups by name for swift-mustache, which otherwise reflects (Mirror) on every variable of every
// message: with these switches a 5-notification digest renders in ~0.3 ms instead of ~1.65 ms
// (BENCHMARKS.md). Keep in step with DigestView.swift: DigestViewLookupTests checks every property.

extension DigestView: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "app_name": app_name
        case "user_id": user_id
        case "user_display_name": user_display_name
        case "summary": summary
        case "headline": headline
        case "unsubscribe_link": unsubscribe_link
        case "rooms": rooms
        case "more_rooms": more_rooms
        case "reason": reason
        default: nil
        }
    }
}

extension MoreRoomsView: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "count": count
        case "plural": plural
        case "messages": messages
        case "messages_plural": messages_plural
        default: nil
        }
    }
}

extension ReasonView: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "room_id": room_id
        case "room_name": room_name
        case "room_link": room_link
        case "received_at": received_at
        case "delay": delay
        case "delay_before_mail_ms": delay_before_mail_ms
        case "last_sent_at": last_sent_at
        case "last_sent_ts": last_sent_ts
        case "throttle": throttle
        case "throttle_ms": throttle_ms
        case "now": now
        default: nil
        }
    }
}

extension RoomView: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "room_id": room_id
        case "title": title
        case "room_link": room_link
        case "room_avatar_url": room_avatar_url
        case "invites": invites
        case "messages": messages
        case "more_messages": more_messages
        default: nil
        }
    }
}

extension MoreMessagesView: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "count": count
        case "plural": plural
        default: nil
        }
    }
}

extension InviteView: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "inviter_id": inviter_id
        case "inviter_name": inviter_name
        case "room_title": room_title
        case "invite_link": invite_link
        case "time": time
        default: nil
        }
    }
}

extension MessageView: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "event_id": event_id
        case "event_link": event_link
        case "sender_id": sender_id
        case "sender_name": sender_name
        case "sender_avatar_url": sender_avatar_url
        case "time": time
        case "ts": ts
        case "is_text": is_text
        case "is_emote": is_emote
        case "is_image": is_image
        case "is_encrypted": is_encrypted
        case "is_unrecognised": is_unrecognised
        case "body_text": body_text
        case "body_html": body_html
        case "image_url": image_url
        default: nil
        }
    }
}
