import LMDB

/// Where the log stands in one stream of a followed source (a Synapse table read by its stream
/// id). Stored in LMDB in the same write transaction as the entries read from that stream, so a
/// restart neither skips rows nor appends them twice.
public struct SourcePosition: Sendable, Equatable {
    /// The highest stream position read.
    public var position: Int64
    /// Where the next read starts: rows above this may still become visible late (a lower
    /// stream ordering committed after a higher one), so they are read again and skipped when
    /// already taken.
    public var windowStart: Int64

    public init(position: Int64, windowStart: Int64) {
        self.position = position
        self.windowStart = windowStart
    }

    var encoded: [UInt8] {
        BigEndian.bytes(UInt64(bitPattern: position)) + BigEndian.bytes(UInt64(bitPattern: windowStart))
    }

    init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 16 else { return nil }
        position = Int64(bitPattern: BigEndianRead.uint64(bytes, at: 0))
        windowStart = Int64(bitPattern: BigEndianRead.uint64(bytes, at: 8))
    }
}

/// The keys of `source_seen`: stream name, 0x00, the row's position (big-endian), then what
/// tells rows at one position apart (the user of a push action; nothing for a receipt or a
/// pusher, whose stream id is theirs alone).
enum SourceKeys {
    static func seen(_ stream: String, _ position: Int64, _ identity: String) -> [UInt8] {
        var k = streamPrefix(stream)
        BigEndian.append(UInt64(bitPattern: position), to: &k)
        k.append(contentsOf: identity.utf8.prefix(Keys.maxKeyBytes - k.count))
        return k
    }

    static func streamPrefix(_ stream: String) -> [UInt8] {
        var k = Array(stream.utf8)
        k.append(0)
        return k
    }
}

extension StoreWriteContext {
    /// The stored position of `stream`, nil before the first read of it.
    public func sourcePosition(_ stream: String) throws -> SourcePosition? {
        guard let v = try txn.get(store.sourceState, Array(stream.utf8)) else { return nil }
        guard let p = SourcePosition(v) else {
            throw CorruptData(what: "source_state", reason: "the value of \(stream) is not 16 bytes")
        }
        return p
    }

    public func setSourcePosition(_ stream: String, _ position: SourcePosition) throws {
        try txn.put(store.sourceState, Array(stream.utf8), position.encoded)
    }

    /// Whether the row at `position` of `stream` (told apart by `identity`) was already taken.
    public func sourceSeen(_ stream: String, _ position: Int64, _ identity: String = "") throws -> Bool {
        try txn.get(store.sourceSeen, SourceKeys.seen(stream, position, identity)) != nil
    }

    /// Marks the row taken unless it already was; returns whether it was not (one lookup, where
    /// ``sourceSeen(_:_:_:)`` then a put made two).
    public func markSourceSeenIfNew(_ stream: String, _ position: Int64, _ identity: String = "") throws -> Bool {
        try txn.insert(store.sourceSeen, SourceKeys.seen(stream, position, identity), [UInt8(1)])
    }

    /// Forgets the rows of `stream` below `position`: they are out of the trailing window and
    /// will not be read again.
    public func pruneSourceSeen(_ stream: String, below position: Int64) throws {
        let prefix = SourceKeys.streamPrefix(stream)
        let end = SourceKeys.seen(stream, position, "")
        try txn.withCursor(store.sourceSeen) { cursor in
            while let (k, _) = try cursor.seek(prefix), k.starts(with: prefix), k.lexicographicallyPrecedes(end) {
                try cursor.deleteCurrent()
            }
        }
    }
}

extension Store {
    /// Every stream position stored, by stream name.
    public func sourcePositions() throws -> [String: SourcePosition] {
        try env.read { txn in
            var out: [String: SourcePosition] = [:]
            try txn.forEach(sourceState) { k, v in
                if let p = SourcePosition(v) { out[String(decoding: k, as: UTF8.self)] = p }
                return true
            }
            return out
        }
    }
}

extension Store {
    /// How many rows of `stream` with `above < position <= atMost` were taken (the
    /// trailing-window check compares this with the source's own count).
    public func sourceSeenCount(_ stream: String, above: Int64, atMost: Int64) throws -> Int {
        guard atMost > above else { return 0 }
        let prefix = SourceKeys.streamPrefix(stream)
        return try env.read { txn in
            var n = 0
            try txn.forEach(sourceSeen, from: SourceKeys.seen(stream, above + 1, "")) { k, _ in
                guard k.starts(with: prefix), k.count >= prefix.count + 8 else { return false }
                let p = Int64(bitPattern: BigEndianRead.uint64(UnsafeRawBufferPointer(rebasing: k[prefix.count...]), at: 0))
                guard p <= atMost else { return false }
                n += 1
                return true
            }
            return n
        }
    }
}
