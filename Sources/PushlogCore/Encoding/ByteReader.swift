/// Reads the codec's fields (see ``EntryCodec``) from bytes in place; every read is bounds
/// checked and a short or damaged buffer throws ``CorruptData`` naming `what` and the offset.
struct ByteReader {
    let buf: UnsafeRawBufferPointer
    var i = 0
    let what: String

    init(_ buf: UnsafeRawBufferPointer, what: String) {
        self.buf = buf
        self.what = what
    }

    var atEnd: Bool { i == buf.count }

    func corrupt(_ reason: String) -> CorruptData { CorruptData(what: what, reason: "\(reason) at byte \(i)") }

    mutating func byte() throws -> UInt8 {
        guard i < buf.count else { throw corrupt("truncated") }
        defer { i += 1 }
        return buf[i]
    }

    mutating func fixed64() throws -> UInt64 {
        guard i + 8 <= buf.count else { throw corrupt("truncated") }
        defer { i += 8 }
        return BigEndianRead.uint64(buf, at: i)
    }

    mutating func varint() throws -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            guard shift < 64 else { throw corrupt("varint too long") }
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
        }
    }

    mutating func int() throws -> Int64 {
        let u = try varint()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    mutating func rawBytes() throws -> UnsafeRawBufferPointer {
        // Compared as UInt64 before any conversion: a damaged length can be anything up to
        // 2^64-1, which `Int(_:)` (and `i + n`) would trap on.
        let length = try varint()
        guard length <= UInt64(buf.count - i) else { throw corrupt("truncated") }
        let n = Int(length)
        defer { i += n }
        return UnsafeRawBufferPointer(rebasing: buf[i..<i + n])
    }

    mutating func string() throws -> String { try string(rawBytes()) }

    /// A field already read with ``rawBytes()``, as a string.
    func string(_ b: UnsafeRawBufferPointer) throws -> String {
        guard let s = String(validating: b, as: UTF8.self) else { throw corrupt("invalid UTF-8") }
        return s
    }

    mutating func optionalString() throws -> String? {
        try byte() == 1 ? try string() : nil
    }

    mutating func json() throws -> JSON {
        let b = try rawBytes()
        do { return try JSON.parse(b) } catch { throw corrupt("bad JSON: \(error)") }
    }

    /// A field already read with ``rawBytes()``, parsed as JSON.
    func json(_ b: UnsafeRawBufferPointer, _ field: String) throws -> JSON {
        do { return try JSON.parse(b) } catch { throw corrupt("bad JSON in \(field): \(error)") }
    }
}

enum BigEndianRead {
    @inline(__always)
    static func uint64(_ b: UnsafeRawBufferPointer, at offset: Int) -> UInt64 {
        b.loadUnaligned(fromByteOffset: offset, as: UInt64.self).bigEndian
    }

    @inline(__always)
    static func uint32(_ b: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
        b.loadUnaligned(fromByteOffset: offset, as: UInt32.self).bigEndian
    }
}
