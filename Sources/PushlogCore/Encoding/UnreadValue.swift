import LMDB

/// `unread`: how many notifications of a room are unread, and the pos of the oldest of them.
struct UnreadValue {
    var count: UInt64
    var oldestPos: UInt64

    func encoded() -> [UInt8] { BigEndian.bytes(count) + BigEndian.bytes(oldestPos) }

    static func decode(_ b: UnsafeRawBufferPointer) throws -> UnreadValue {
        guard b.count == 16 else { throw CorruptData(what: "unread count", reason: "\(b.count) bytes") }
        return UnreadValue(count: BigEndianRead.uint64(b, at: 0), oldestPos: BigEndianRead.uint64(b, at: 8))
    }
}
