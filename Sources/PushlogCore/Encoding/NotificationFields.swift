/// A notification entry's fields (``EntryCodec`` format 1) as slices of its bytes: the one reader
/// of that layout. ``EntryCodec/decode(_:pos:)`` builds strings and `JSON` from the slices;
/// ``RawNotification`` keeps them as they are.
///
/// Trap: the slices point into the bytes read (the LMDB map, usually): valid only as long as
/// those bytes are.
struct NotificationFields {
    var userID: UnsafeRawBufferPointer
    var roomID: UnsafeRawBufferPointer
    var eventID: UnsafeRawBufferPointer
    var streamOrdering: Int64
    /// JSON text of the push-rule actions (an array).
    var actions: UnsafeRawBufferPointer
    var threadID: UnsafeRawBufferPointer
    var receivedTS: Int64
    /// JSON text of the event (an object).
    var event: UnsafeRawBufferPointer
    /// JSON text of the context (an object), when there is one.
    var context: UnsafeRawBufferPointer?

    /// Reads the fields that follow a notification's header; `r` is left after the last one.
    /// Throws ``CorruptData`` for truncated bytes or a context flag other than 0 or 1.
    static func read(_ r: inout ByteReader) throws -> NotificationFields {
        let user = try r.rawBytes(), room = try r.rawBytes(), event = try r.rawBytes()
        let so = try r.int()
        let actions = try r.rawBytes()
        let thread = try r.rawBytes()
        let received = try r.int()
        let ev = try r.rawBytes()
        var context: UnsafeRawBufferPointer?
        switch try r.byte() {
        case 0: break
        case 1: context = try r.rawBytes()
        default: throw r.corrupt("context flag")
        }
        return NotificationFields(userID: user, roomID: room, eventID: event, streamOrdering: so, actions: actions,
                                  threadID: thread, receivedTS: received, event: ev, context: context)
    }
}

extension EntryCodec {
    /// Reads an entry's header: format (only ``format`` is known), type and append time.
    static func readHeader(_ r: inout ByteReader) throws -> (type: TypeCode, ts: Int64) {
        let f = try r.byte()
        guard f == format else { throw r.corrupt("unknown format \(f)") }
        guard let type = TypeCode(rawValue: try r.byte()) else { throw r.corrupt("unknown entry type") }
        return (type, Int64(bitPattern: try r.fixed64()))
    }
}
