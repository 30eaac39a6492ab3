import LMDB

/// One entry of the `notifs` index: what the pusher needs to know without reading the log.
/// Read back in place, field by field, by `StoreReadView.walkNotifications`.
public struct NotifIndexValue: Sendable, Equatable {
    public var roomID: String
    public var streamOrdering: Int64
    public var threadID: String
    public var highlight: Bool

    func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 48)
        w.byte(highlight ? 1 : 0)
        w.fixed64(UInt64(bitPattern: streamOrdering))
        w.string(roomID)
        w.string(threadID)
        return w.bytes
    }
}
