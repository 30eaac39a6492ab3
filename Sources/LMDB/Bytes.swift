/// Big-endian integer keys, so that LMDB's byte order is numeric order.
public enum BigEndian {
    @inline(__always)
    public static func bytes(_ v: UInt64) -> [UInt8] {
        withUnsafeBytes(of: v.bigEndian) { Array($0) }
    }

    @inline(__always)
    public static func append(_ v: UInt64, to out: inout [UInt8]) {
        withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0) }
    }

    /// Reads 8 bytes at `offset` as a big-endian UInt64.
    @inline(__always)
    public static func uint64(_ b: UnsafeRawBufferPointer, at offset: Int = 0) -> UInt64 {
        var v: UInt64 = 0
        withUnsafeMutableBytes(of: &v) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: b[offset ..< offset + 8])) }
        return UInt64(bigEndian: v)
    }

    public static func uint64(_ b: [UInt8], at offset: Int = 0) -> UInt64 {
        b.withUnsafeBytes { uint64($0, at: offset) }
    }
}

/// Anything whose bytes can be lent as a key or a value.
public protocol RawBytes {
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}

extension Array: RawBytes where Element == UInt8 {}
extension ArraySlice: RawBytes where Element == UInt8 {}
extension UnsafeRawBufferPointer: RawBytes {
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R { try body(self) }
}
