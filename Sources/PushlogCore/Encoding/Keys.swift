import LMDB

/// How keys are laid out. User ids never contain NUL (validation refuses control characters),
/// so `user + 0x00 + …` keys sort by user first, the same order as `heads`, which is what lets
/// the boot check walk consumers and heads side by side.
public enum Keys {
    public static func pos(_ p: UInt64) -> [UInt8] { BigEndian.bytes(p) }

    /// `heads`: the user id alone.
    public static func user(_ user: String) -> [UInt8] { Array(user.utf8) }

    /// The `user + 0x00` prefix of every per-user key.
    public static func userPrefix(_ user: String) -> [UInt8] {
        var k = Array(user.utf8)
        k.append(0)
        return k
    }

    /// `notifs`: user, 0x00, pos.
    public static func notif(_ user: String, _ pos: UInt64) -> [UInt8] {
        var k = userPrefix(user)
        BigEndian.append(pos, to: &k)
        return k
    }

    /// `unread`: user, 0x00, room.
    public static func room(_ user: String, _ room: String) -> [UInt8] {
        var k = userPrefix(user)
        k.append(contentsOf: room.utf8)
        return k
    }

    /// LMDB's key size limit (`mdb_env_get_maxkeysize` of a default build).
    public static let maxKeyBytes = 511

    /// `receipts`: user, 0x00, room, 0x00, then 0x00 for the unthreaded receipt or 0x01 + thread;
    /// when that would not fit a key, user, 0x00, 0xFF, SHA-256 of what follows the user
    /// (see ``appendReceiptTail(room:thread:to:)``).
    public static func receipt(_ user: String, _ room: String, thread: String?) -> [UInt8] {
        var k = userPrefix(user)
        var room = room
        room.withUTF8 { r in
            guard var thread else {
                appendReceiptTail(room: UnsafeRawBufferPointer(r), thread: nil, to: &k)
                return
            }
            thread.withUTF8 { appendReceiptTail(room: UnsafeRawBufferPointer(r), thread: UnsafeRawBufferPointer($0), to: &k) }
        }
        return k
    }

    /// What follows `user 0x00` in a `receipts` key: room, 0x00, then 0x00 (unthreaded) or
    /// 0x01 + thread. A 255-byte user, room and thread side by side do not fit LMDB's 511 bytes,
    /// so a tail that would overflow is replaced by 0xFF + SHA-256 of itself: 0xFF never starts a
    /// UTF-8 room id, so the two forms cannot meet, the keys of ordinary ids stay as they always
    /// were, and every key still starts with the user's prefix. Receipt keys are only ever looked
    /// up, never parsed, so nothing needs the room back.
    static func appendReceiptTail(room: UnsafeRawBufferPointer, thread: UnsafeRawBufferPointer?, to k: inout [UInt8]) {
        let tail = room.count + 2 + (thread?.count ?? 0)
        if k.count + tail <= maxKeyBytes {
            k.append(contentsOf: room)
            appendReceiptThread(thread, to: &k)
            return
        }
        var plain: [UInt8] = []
        plain.reserveCapacity(tail)
        plain.append(contentsOf: room)
        appendReceiptThread(thread, to: &plain)
        k.append(0xFF)
        k.append(contentsOf: Hashing.sha256(plain))
    }

    static func appendReceiptThread(_ thread: UnsafeRawBufferPointer?, to k: inout [UInt8]) {
        k.append(0)
        if let thread {
            k.append(1)
            k.append(contentsOf: thread)
        } else {
            k.append(0)
        }
    }

    /// SHA-256 of `app_id 0x00 pushkey`: the fixed-size half of a pusher key.
    public static func appKeyHash(appID: String, pushkey: String) -> [UInt8] {
        var m = Array(appID.utf8)
        m.append(0)
        m.append(contentsOf: pushkey.utf8)
        return Hashing.sha256(m)
    }

    /// `pushers` and `consumers`: user, 0x00, hash(app_id, pushkey).
    public static func pusher(_ id: PusherID) -> [UInt8] {
        userPrefix(id.userID) + appKeyHash(appID: id.appID, pushkey: id.pushkey)
    }

    /// `pusher_keys`: hash(app_id, pushkey), then the user: every user holding that pushkey.
    public static func pusherKeyIndex(_ id: PusherID) -> [UInt8] {
        appKeyHash(appID: id.appID, pushkey: id.pushkey) + Array(id.userID.utf8)
    }

    /// The user id at the front of a user-prefixed key.
    public static func userID(of key: UnsafeRawBufferPointer) -> String {
        let end = key.firstIndex(of: 0) ?? key.count
        return String(decoding: UnsafeRawBufferPointer(rebasing: key[..<end]), as: UTF8.self)
    }

    /// Length of the user part of a user-prefixed key.
    @inline(__always)
    static func userLength(_ key: UnsafeRawBufferPointer) -> Int {
        key.firstIndex(of: 0) ?? key.count
    }
}
