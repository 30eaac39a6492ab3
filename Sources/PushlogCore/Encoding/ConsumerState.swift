/// What a pusher has done, not derived from the log: where its cursor stands, its failure and
/// backoff schedule, the last badge it sent, and its generation. Stored as a fixed 46-byte record
/// (records of 42 bytes, written before the generation existed, read as generation 0) so the
/// boot check reads it without decoding anything but the cursor and the enabled flag.
public struct ConsumerState: Sendable, Equatable {
    /// The pos of the last log entry this pusher has finished with.
    public var cursor: UInt64
    public var failingSince: Int64?
    public var nextAttempt: Int64?
    public var lastSuccess: Int64?
    public var lastBadge: Int64?
    public var enabled: Bool
    public var kind: PusherKind
    /// Bumped by every rewind: a delivery loop's writes carry the generation it read, and those
    /// of an older generation are dropped, so a rewind wins over a loop that was already running.
    public var generation: UInt32

    public init(cursor: UInt64, failingSince: Int64? = nil, nextAttempt: Int64? = nil, lastSuccess: Int64? = nil,
                lastBadge: Int64? = nil, enabled: Bool = true, kind: PusherKind = .http, generation: UInt32 = 0) {
        self.cursor = cursor
        self.failingSince = failingSince
        self.nextAttempt = nextAttempt
        self.lastSuccess = lastSuccess
        self.lastBadge = lastBadge
        self.enabled = enabled
        self.kind = kind
        self.generation = generation
    }

    static let size = 46
    /// The record before the generation was added (read as generation 0).
    static let minSize = 42
    static let none = UInt64.max

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: Self.size)
        w.fixed64(cursor)
        for v in [failingSince, nextAttempt, lastSuccess, lastBadge] {
            w.fixed64(v.map { UInt64(bitPattern: $0) } ?? Self.none)
        }
        w.byte(enabled ? 1 : 0)
        w.byte(kind.code)
        w.fixed32(generation)
        return w.bytes
    }

    public static func decode(_ b: UnsafeRawBufferPointer) throws -> ConsumerState {
        guard b.count >= minSize, let kind = PusherKind(code: b[41]) else {
            throw CorruptData(what: "consumer state", reason: "\(b.count) bytes")
        }
        func opt(_ at: Int) -> Int64? {
            let v = BigEndianRead.uint64(b, at: at)
            return v == none ? nil : Int64(bitPattern: v)
        }
        return ConsumerState(cursor: BigEndianRead.uint64(b, at: 0), failingSince: opt(8), nextAttempt: opt(16),
                             lastSuccess: opt(24), lastBadge: opt(32), enabled: b[40] != 0, kind: kind,
                             generation: b.count >= size ? BigEndianRead.uint32(b, at: 42) : 0)
    }

    /// Reads the cursor and enabled flag only (the boot check's hot path).
    @inline(__always)
    static func cursorIfEnabled(_ b: UnsafeRawBufferPointer) -> UInt64? {
        guard b.count >= minSize, b[40] != 0 else { return nil }
        return BigEndianRead.uint64(b, at: 0)
    }
}
