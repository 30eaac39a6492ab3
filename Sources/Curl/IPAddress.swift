#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address, as a connection sees it.
///
/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) *is* its IPv4 address here: a socket
/// connecting to it reaches the IPv4 host, so that is what a range check must judge.
public enum IPAddress: Sendable, Hashable, CustomStringConvertible {
    case v4(UInt32)
    /// The 128 bits as two big-endian halves.
    case v6(high: UInt64, low: UInt64)

    /// The address from its 4 or 16 bytes in network order; nil for any other count.
    public init?(bytes: some Collection<UInt8>) {
        let b = Array(bytes)
        switch b.count {
        case 4:
            self = .v4(b.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        case 16:
            let high = b[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let low = b[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            if high == 0, low >> 32 == 0xFFFF {
                self = .v4(UInt32(truncatingIfNeeded: low))
            } else {
                self = .v6(high: high, low: low)
            }
        default:
            return nil
        }
    }

    /// An address as a URL's host may spell it: dotted IPv4, IPv6 with or without brackets (a
    /// zone such as `%eth0` ignored), and the other IPv4 spellings libcurl and `inet_aton`
    /// accept (`127.1`, `0x7f.1`, `2130706433`, `0177.0.0.1`). Nil for a host name.
    public init?(literal text: String) {
        var host = Substring(text)
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        if let percent = host.firstIndex(of: "%") { host = host[..<percent] }
        guard !host.isEmpty else { return nil }
        if host.contains(":") {
            var bytes = [UInt8](repeating: 0, count: 16)
            guard inet_pton(AF_INET6, String(host), &bytes) == 1 else { return nil }
            self.init(bytes: bytes)
            return
        }
        // inet_aton stops at the first space and accepts what precedes it, so only hand it
        // text made of the characters a numeric address can have.
        guard host.utf8.allSatisfy({ $0.isHexDigit || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "x") || $0 == UInt8(ascii: "X") }),
              let first = host.utf8.first, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else {
            return nil
        }
        var address = in_addr()
        guard inet_aton(String(host), &address) != 0 else { return nil }
        self = .v4(UInt32(bigEndian: address.s_addr))
    }

    /// Dotted IPv4, or IPv6 in `inet_ntop`'s form.
    public var description: String {
        switch self {
        case .v4(let a):
            return "\(a >> 24).\(a >> 16 & 0xFF).\(a >> 8 & 0xFF).\(a & 0xFF)"
        case .v6(let high, let low):
            var bytes = [UInt8](repeating: 0, count: 16)
            for i in 0..<8 {
                bytes[i] = UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64(i)))
                bytes[8 + i] = UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64(i)))
            }
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            guard inet_ntop(AF_INET6, bytes, &text, socklen_t(text.count)) != nil else { return "?" }
            return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// The address as IPv6 (an IPv4 address as `::ffff:a.b.c.d`), for comparing with IPv6 ranges.
    var asV6: (high: UInt64, low: UInt64) {
        switch self {
        case .v4(let a): return (0, 0xFFFF_0000_0000 | UInt64(a))
        case .v6(let high, let low): return (high, low)
        }
    }
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(self)
    }
}
