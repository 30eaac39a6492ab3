/// An email address with an optional display name, as it goes into `From:` or `To:`.
///
/// Only plain addr-specs are accepted: `local@domain` with a dot-atom local part (letters,
/// digits and ``atextSymbols``) and a domain of letters, digits and hyphens. That refuses
/// everything that could smuggle a second address or header in (CR, LF, controls, `<`, `>`,
/// `,`, spaces, quotes), at the price of the rare quoted local part and international
/// addresses, which Pushlog does not send to.
public struct MailAddress: Sendable, Equatable {
    /// The addr-spec, `local@domain`.
    public let address: String
    /// The human part of `Name <local@domain>`, as given (it is sanitised and encoded only
    /// when the header is written); `nil` or empty for a bare address.
    public let displayName: String?

    /// Checks `address` is a plain addr-spec.
    /// - Throws: ``MailError/invalidHeader(field:reason:)`` naming `field` when it is not.
    public init(address: String, displayName: String? = nil, field: String) throws(MailError) {
        guard Self.isAddrSpec(address) else {
            throw MailError.invalidHeader(field: field, reason: "not a plain local@domain address: \(String(reflecting: address))")
        }
        self.address = address
        self.displayName = displayName
    }

    /// Parses `Display Name <local@domain>` (the name may be in double quotes) or a bare
    /// `local@domain`; surrounding spaces are ignored.
    /// - Throws: ``MailError/invalidHeader(field:reason:)`` naming `field` when the text has
    ///   neither shape or the address is not a plain addr-spec.
    public init(parsing text: String, field: String) throws(MailError) {
        let trimmed = Self.trimmed(Substring(text))
        guard trimmed.hasSuffix(">") else {
            try self.init(address: String(trimmed), field: field)
            return
        }
        guard let open = trimmed.lastIndex(of: "<") else {
            throw MailError.invalidHeader(field: field, reason: "unbalanced angle brackets in \(String(reflecting: text))")
        }
        let address = String(trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)])
        var name = Self.trimmed(trimmed[..<open])
        if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") {
            name = name.dropFirst().dropLast()
            name = Substring(Self.unescaped(name))
        }
        guard !name.contains("<"), !name.contains(">") else {
            throw MailError.invalidHeader(field: field, reason: "unbalanced angle brackets in \(String(reflecting: text))")
        }
        try self.init(address: address, displayName: name.isEmpty ? nil : String(name), field: field)
    }

    /// The part after the `@`.
    public var domain: Substring {
        address[address.index(after: address.lastIndex(of: "@")!)...]
    }

    /// The symbols RFC 5322 allows in an atom besides letters and digits.
    static let atextSymbols: Set<UInt8> = Set("!#$%&'*+-/=?^_`{|}~".utf8)

    static func isAtext(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return atextSymbols.contains(byte)
        }
    }

    /// `dot-atom "@" domain`, lengths within RFC 5321's limits (64 for the local part, 254 in all).
    static func isAddrSpec(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count <= 254, let at = bytes.lastIndex(of: UInt8(ascii: "@")) else { return false }
        let local = bytes[..<at]
        let domain = bytes[(at + 1)...]
        guard local.count <= 64 else { return false }
        return isDotSeparated(local, isAtext) && isDotSeparated(domain) { byte in
            byte == UInt8(ascii: "-") || (isAtext(byte) && !atextSymbols.contains(byte))
        }
    }

    /// Non-empty runs of allowed bytes separated by single dots.
    private static func isDotSeparated(_ bytes: ArraySlice<UInt8>, _ allowed: (UInt8) -> Bool) -> Bool {
        guard !bytes.isEmpty, bytes.first != UInt8(ascii: "."), bytes.last != UInt8(ascii: ".") else { return false }
        var previousWasDot = false
        for byte in bytes {
            if byte == UInt8(ascii: ".") {
                if previousWasDot { return false }
                previousWasDot = true
            } else {
                guard allowed(byte) else { return false }
                previousWasDot = false
            }
        }
        return true
    }

    private static func trimmed(_ text: Substring) -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = text.firstIndex(where: { !isSpace($0) }) else { return text[text.endIndex...] }
        let end = text.lastIndex(where: { !isSpace($0) })!
        return text[start...end]
    }

    /// The content of a quoted-string: `\x` stands for `x`.
    private static func unescaped(_ text: Substring) -> String {
        var result = ""
        var escaping = false
        for character in text {
            if !escaping, character == "\\" {
                escaping = true
                continue
            }
            escaping = false
            result.append(character)
        }
        return result
    }
}
