/// The pusher registry's value: the config without its id (that is the key), as a pusher-set
/// entry encodes it.
enum PusherRecord {
    static func encode(_ config: PusherConfig) -> [UInt8] {
        EntryCodec.encode(.pusherSet(config), ts: 0)
    }

    static func decode(_ b: UnsafeRawBufferPointer) throws -> PusherConfig {
        guard case .pusherSet(let c) = try EntryCodec.decode(b, pos: 0).entry else {
            throw CorruptData(what: "pusher record", reason: "not a pusher")
        }
        return c
    }
}
