/// A block of addresses in CIDR notation: `10.0.0.0/8`, `fe80::/10`, or one address (`::1`,
/// which is `::1/128`).
public struct IPRange: Sendable, Hashable, CustomStringConvertible {
    /// The first address of the range (its host bits cleared).
    public let network: IPAddress
    public let prefixLength: Int

    /// Parses `a.b.c.d/n` (n ≤ 32) or an IPv6 address `/n` (n ≤ 128); without `/n`, the one
    /// address. Host bits set below the prefix (`10.1.2.3/8`) are ignored, as Synapse's netaddr
    /// does. Nil for anything else, including the odd IPv4 spellings (`127.1`): a range in a
    /// configuration file should say what it means.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let addressText = parts.first else { return nil }
        let address: IPAddress
        if addressText.contains(":") {
            guard !addressText.hasPrefix("["), !addressText.contains("%"), let a = IPAddress(literal: String(addressText)) else { return nil }
            address = a
        } else {
            // Dotted quads only: four decimal parts of at most three digits each.
            let quads = addressText.split(separator: ".", omittingEmptySubsequences: false)
            guard quads.count == 4,
                  quads.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCIIDigit) && Int($0)! <= 255 }) else {
                return nil
            }
            address = .v4(quads.reduce(UInt32(0)) { $0 << 8 | UInt32($1)! })
        }
        // A range written as IPv4-mapped IPv6 (`::ffff:10.0.0.0/104`) is that IPv4 range, since
        // mapped addresses are judged as IPv4.
        let written6 = addressText.contains(":")
        var length: Int
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].count <= 3, parts[1].allSatisfy(\.isASCIIDigit), let n = Int(parts[1]) else { return nil }
            length = n
        } else {
            length = written6 ? 128 : 32
        }
        switch address {
        case .v4 where written6:
            guard length >= 96, length <= 128 else { return nil }
            length -= 96
        case .v4:
            guard length <= 32 else { return nil }
        case .v6:
            guard length <= 128 else { return nil }
        }
        self.prefixLength = length
        self.network = Self.masked(address, length)
    }

    /// Whether `address` is in the range. An IPv4 address is also compared with an IPv6 range
    /// in its mapped form (so `::ffff:0:0/96` covers every IPv4 address).
    public func contains(_ address: IPAddress) -> Bool {
        switch (network, address) {
        case (.v4, .v4):
            return Self.masked(address, prefixLength) == network
        case (.v6, _):
            let (high, low) = address.asV6
            return Self.masked(.v6(high: high, low: low), prefixLength) == network
        case (.v4, .v6):
            return false
        }
    }

    public var description: String { "\(network)/\(prefixLength)" }

    private static func masked(_ address: IPAddress, _ length: Int) -> IPAddress {
        switch address {
        case .v4(let a):
            return .v4(length == 0 ? 0 : a & ~UInt32(0) << (32 - length))
        case .v6(let high, let low):
            let highMask: UInt64 = length >= 64 ? ~0 : (length == 0 ? 0 : ~UInt64(0) << (64 - length))
            let lowMask: UInt64 = length <= 64 ? 0 : (length == 128 ? ~0 : ~UInt64(0) << (128 - length))
            return .v6(high: high & highMask, low: low & lowMask)
        }
    }
}

/// Which addresses a connection may be made to: any address outside ``blocked``, and those
/// inside it that ``allowed`` covers (Synapse's `ip_range_blacklist` and
/// `ip_range_whitelist`).
///
/// `0.0.0.0` and `::` are always blocked (connecting to them reaches this host), as Synapse
/// does; a range in ``allowed`` can still let them through.
public struct AddressPolicy: Sendable, Hashable {
    /// Both lists in one box: every request carries the policy, and a copy is then one
    /// reference counted, not two (the box is copied on write).
    private final class Ranges: Sendable {
        let blocked: [IPRange]
        let allowed: [IPRange]

        init(blocked: [IPRange], allowed: [IPRange]) {
            self.blocked = blocked
            self.allowed = allowed
        }
    }

    private var ranges: Ranges

    public var blocked: [IPRange] {
        get { ranges.blocked }
        set { ranges = Ranges(blocked: newValue, allowed: ranges.allowed) }
    }

    public var allowed: [IPRange] {
        get { ranges.allowed }
        set { ranges = Ranges(blocked: ranges.blocked, allowed: newValue) }
    }

    public init(blocked: [IPRange], allowed: [IPRange] = []) {
        ranges = Ranges(blocked: blocked, allowed: allowed)
    }

    public static func == (a: AddressPolicy, b: AddressPolicy) -> Bool {
        a.ranges === b.ranges || (a.blocked == b.blocked && a.allowed == b.allowed)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(blocked)
        hasher.combine(allowed)
    }

    /// Synapse's default `ip_range_blacklist`: loopback, private (RFC 1918), carrier-grade
    /// NAT, link-local, documentation, benchmarking and multicast space, and their IPv6 kin.
    public static let defaultBlocked: [IPRange] = [
        "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24",
        "169.254.0.0/16", "192.88.99.0/24", "198.18.0.0/15", "192.0.2.0/24", "198.51.100.0/24",
        "203.0.113.0/24", "224.0.0.0/4", "::1/128", "fe80::/10", "fc00::/7", "2001:db8::/32", "ff00::/8",
        "fec0::/10",
    ].map { IPRange($0)! }

    /// Synapse's defaults: ``defaultBlocked``, nothing allowed.
    public static let `default` = AddressPolicy(blocked: defaultBlocked)

    private static let unspecified = [IPRange("0.0.0.0")!, IPRange("::")!]

    /// Whether a connection to `address` may be made.
    public func permits(_ address: IPAddress) -> Bool {
        let isBlocked = blocked.contains { $0.contains(address) } || Self.unspecified.contains { $0.contains(address) }
        return !isBlocked || allowed.contains { $0.contains(address) }
    }

    /// The ranges in `text`, comma-separated (spaces, YAML flow brackets and quotes around
    /// items allowed: `10.0.0.0/8, ::1`, `["127.0.0.0/8"]`); empty text is an empty list.
    /// Throws naming the first item that is not a range.
    public static func ranges(_ text: String) throws(MalformedRange) -> [IPRange] {
        var body = Substring(text).trimmingSpaces()
        if body.hasPrefix("["), body.hasSuffix("]") { body = body.dropFirst().dropLast() }
        var ranges: [IPRange] = []
        for part in body.split(separator: ",", omittingEmptySubsequences: false) {
            var item = part.trimmingSpaces()
            if item.count >= 2, let q = item.first, q == "\"" || q == "'", item.last == q { item = item.dropFirst().dropLast() }
            if item.isEmpty, body.trimmingSpaces().isEmpty { continue }
            guard let range = IPRange(String(item)) else { throw MalformedRange(text: String(item)) }
            ranges.append(range)
        }
        return ranges
    }

    /// An item of a range list that is not a CIDR range.
    public struct MalformedRange: Error, Sendable, CustomStringConvertible {
        public var text: String
        public var description: String { "'\(text)' is not an address range such as 10.0.0.0/8 or fe80::/10" }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }) else { return self[endIndex...] }
        return self[start...lastIndex(where: { !isSpace($0) })!]
    }
}
