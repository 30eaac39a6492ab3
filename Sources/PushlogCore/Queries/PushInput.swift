import LMDB

/// Everything one push needs, read in one transaction.
public struct PushInput: Sendable {
    public var pusher: LoadedPusher
    /// nil when the entry is gone (compacted) or not a notification.
    public var entry: LoggedEntry?
    public var badge: Int
}

extension StoreReadView {
    /// The pusher at `key` (nil when removed), the entry at `pos` and the user's badge.
    public func pushInput(key: [UInt8], pos: UInt64, rule: BadgeRule) throws -> PushInput? {
        guard let raw = try rawPushInput(key: key, pos: pos) else { return nil }
        let config = try raw.decodePusher()
        return PushInput(pusher: LoadedPusher(key: key, config: config, state: raw.state),
                         entry: try raw.entry.map { try EntryCodec.decode($0, pos: pos) },
                         badge: try badge(user: config.id.userID, rule: rule))
    }
}

/// What the HTTP pusher reads for one push, in place (see ``RawNotification``): valid only
/// inside the ``StoreReadView``'s transaction.
public struct RawPushInput {
    /// The pusher's stored record: compare it with a cached copy before decoding it again.
    public let pusherRecord: UnsafeRawBufferPointer
    public let state: ConsumerState
    /// The log entry's bytes; nil when it was compacted away.
    public let entry: UnsafeRawBufferPointer?

    /// The pusher's config, decoded from ``pusherRecord``.
    public func decodePusher() throws -> PusherConfig { try PusherRecord.decode(pusherRecord) }
}

extension StoreReadView {
    /// The pusher at `key` (nil when removed) and the entry at `pos`, read in place: what
    /// ``pushInput(key:pos:rule:)`` decodes, apart from the badge (see
    /// ``badge(user:rule:cache:globalBeforeRead:)``).
    public func rawPushInput(key: [UInt8], pos: UInt64) throws -> RawPushInput? {
        guard let p = try txn.get(store.projections.pushers, key), let s = try txn.get(store.consumers, key) else { return nil }
        let entry = try withUnsafeBytes(of: pos.bigEndian) { try txn.get(store.log, $0) }  // Keys.pos, without an array
        return RawPushInput(pusherRecord: p, state: try ConsumerState.decode(s), entry: entry)
    }
}

