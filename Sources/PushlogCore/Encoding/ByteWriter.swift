/// Appends the codec's fields (see ``EntryCodec``) to a byte array.
struct ByteWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 128) { bytes.reserveCapacity(capacity) }

    mutating func byte(_ b: UInt8) { bytes.append(b) }

    mutating func fixed64(_ v: UInt64) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func fixed32(_ v: UInt32) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func int(_ v: Int64) { varint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }

    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { u in
            varint(UInt64(u.count))
            bytes.append(contentsOf: u)
        }
    }

    mutating func optionalString(_ s: String?) {
        if let s { byte(1); string(s) } else { byte(0) }
    }

    /// JSON text behind a varint length: written in place, then the length is slotted in front.
    mutating func json(_ v: JSON) {
        let start = bytes.count
        bytes.append(0)  // room for a one-byte length, the common case
        v.write(to: &bytes)
        let n = bytes.count - start - 1
        if n < 0x80 {
            bytes[start] = UInt8(n)
        } else {
            var prefix = ByteWriter(capacity: 4)
            prefix.varint(UInt64(n))
            bytes.replaceSubrange(start..<start + 1, with: prefix.bytes)
        }
    }
}
