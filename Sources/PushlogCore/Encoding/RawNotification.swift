/// A stored notification read in place: the fields a push needs as slices of the entry's bytes
/// (``EntryCodec`` format 1), with no `String`, dictionary or `JSON` value built.
///
/// Why: the HTTP pusher's hot path used to decode every entry into a ``PushNotification`` (a JSON
/// parse of the event into dictionaries) only to serialise most of it again into the body.
/// The event, actions and context are stored as canonical JSON text (sorted keys, our own
/// writer), so the body can copy their values verbatim; see ``RawJSON``.
///
/// Traps:
/// - The slices point into the LMDB map: valid only inside the read transaction that
///   produced the bytes.
/// - Strings are raw UTF-8 as stored, not JSON-escaped.
/// - ``init(_:)`` reads with ``NotificationFields``, as the codec does, and returns nil for
///   anything it does not fully understand (another entry type, a
///   format it does not know, truncated bytes); the caller then takes the slow path
///   (``EntryCodec/decode(_:pos:)``), which names what is wrong.
public struct RawNotification {
    /// When the entry was appended to the log (milliseconds).
    public let ts: Int64
    public let receivedTS: Int64
    public let userID: UnsafeRawBufferPointer
    public let roomID: UnsafeRawBufferPointer
    public let eventID: UnsafeRawBufferPointer
    /// JSON text of the push-rule actions (an array).
    public let actions: UnsafeRawBufferPointer
    /// JSON text of the event (an object).
    public let event: UnsafeRawBufferPointer
    /// JSON text of the context (an object), when there is one.
    public let context: UnsafeRawBufferPointer?

    public init?(_ bytes: UnsafeRawBufferPointer) {
        var r = ByteReader(bytes, what: "")
        guard let (type, ts) = try? EntryCodec.readHeader(&r), type == .notification,
              let f = try? NotificationFields.read(&r), r.atEnd
        else { return nil }
        self.ts = ts
        self.receivedTS = f.receivedTS
        self.userID = f.userID
        self.roomID = f.roomID
        self.eventID = f.eventID
        self.actions = f.actions
        self.event = f.event
        self.context = f.context
    }
}
