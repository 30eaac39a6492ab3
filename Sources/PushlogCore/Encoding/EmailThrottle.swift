import LMDB

/// An email pusher's throttle for one room: when the room was last mailed, how long it waits
/// before the next mail about it, and the pos of the newest notification of the room that a
/// mail has covered (so notifications mailed ahead of the cursor are never mailed twice).
///
/// Kept in `throttles` under the pusher's key + SHA-256 of the room id (a 255-byte user id and a
/// 255-byte room id side by side would not fit LMDB's 511-byte keys), with the room id in the
/// value; it survives updates of the pusher (its identity does not change) and is deleted with it.
public struct EmailThrottle: Sendable, Equatable {
    public var lastSentTS: Int64
    public var throttleMS: Int64
    public var mailedThrough: UInt64

    public init(lastSentTS: Int64, throttleMS: Int64, mailedThrough: UInt64) {
        self.lastSentTS = lastSentTS
        self.throttleMS = throttleMS
        self.mailedThrough = mailedThrough
    }

    static let fixedSize = 24

    static func key(pusher: [UInt8], room: String) -> [UInt8] { pusher + Hashing.sha256(Array(room.utf8)) }

    func encoded(room: String) -> [UInt8] {
        BigEndian.bytes(UInt64(bitPattern: lastSentTS)) + BigEndian.bytes(UInt64(bitPattern: throttleMS))
            + BigEndian.bytes(mailedThrough) + Array(room.utf8)
    }

    static func decode(_ b: UnsafeRawBufferPointer) throws -> (room: String, throttle: EmailThrottle) {
        guard b.count > fixedSize else { throw CorruptData(what: "email throttle", reason: "\(b.count) bytes") }
        let t = EmailThrottle(lastSentTS: Int64(bitPattern: BigEndianRead.uint64(b, at: 0)),
                              throttleMS: Int64(bitPattern: BigEndianRead.uint64(b, at: 8)),
                              mailedThrough: BigEndianRead.uint64(b, at: 16))
        return (String(decoding: UnsafeRawBufferPointer(rebasing: b[fixedSize...]), as: UTF8.self), t)
    }
}
