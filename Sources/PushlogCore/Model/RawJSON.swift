#if canImport(Glibc)
import Glibc
#endif

/// Reading canonical JSON text in place: members of an object as slices, values skipped without
/// being built. Tolerates whitespace; refuses (returns nil/false) what is not well formed enough
/// to be skipped safely. It does not validate what it skips (numbers, escapes): it is meant for
/// text our own writer produced.
public enum RawJSON {
    /// Calls `body(key, value)` for each member of the object in `text`, `key` being the key's
    /// token with its quotes, `value` the value's whole text. Returns false (possibly after
    /// some calls) when `text` is not an object.
    @discardableResult
    public static func forEachMember(_ text: UnsafeRawBufferPointer,
                                     _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) -> Bool {
        var i = 0
        skipSpace(text, &i)
        guard i < text.count, text[i] == UInt8(ascii: "{") else { return false }
        i += 1
        skipSpace(text, &i)
        if i < text.count, text[i] == UInt8(ascii: "}") { return true }
        while true {
            skipSpace(text, &i)
            guard i < text.count, text[i] == UInt8(ascii: "\"") else { return false }
            let keyStart = i
            guard skipValue(text, &i) else { return false }
            let key = UnsafeRawBufferPointer(rebasing: text[keyStart..<i])
            skipSpace(text, &i)
            guard i < text.count, text[i] == UInt8(ascii: ":") else { return false }
            i += 1
            skipSpace(text, &i)
            let valueStart = i
            guard skipValue(text, &i) else { return false }
            body(key, UnsafeRawBufferPointer(rebasing: text[valueStart..<i]))
            skipSpace(text, &i)
            guard i < text.count else { return false }
            if text[i] == UInt8(ascii: "}") { return true }
            guard text[i] == UInt8(ascii: ",") else { return false }
            i += 1
        }
    }

    /// The value of member `key` (given with its quotes, e.g. `"type"`), if the object has one.
    public static func member(_ text: UnsafeRawBufferPointer, _ key: StaticString) -> UnsafeRawBufferPointer? {
        var found: UnsafeRawBufferPointer?
        let name = UnsafeRawBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
        forEachMember(text) { k, v in
            if found == nil, equal(k, name) { found = v }
        }
        return found
    }

    /// Whether a value's text is a string token.
    public static func isString(_ value: UnsafeRawBufferPointer) -> Bool {
        value.count >= 2 && value[0] == UInt8(ascii: "\"")
    }

    public static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        a.count == b.count && (a.isEmpty || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0)
    }

    public static func equal(_ a: UnsafeRawBufferPointer, _ b: StaticString) -> Bool {
        equal(a, UnsafeRawBufferPointer(start: b.utf8Start, count: b.utf8CodeUnitCount))
    }

    /// Whether the string token `token` (quotes included) holds exactly the bytes `raw`. A token
    /// with escapes is decoded first (rare: our writer escapes only `"`, `\` and controls).
    public static func stringToken(_ token: UnsafeRawBufferPointer, equals raw: UnsafeRawBufferPointer) -> Bool {
        guard isString(token) else { return false }
        let inner = UnsafeRawBufferPointer(rebasing: token[1..<token.count - 1])
        if !inner.contains(UInt8(ascii: "\\")) { return equal(inner, raw) }
        guard case .string(let s)? = try? JSON.parse(token) else { return false }
        return Array(s.utf8).withUnsafeBytes { equal($0, raw) }
    }

    @inline(__always)
    static func skipSpace(_ t: UnsafeRawBufferPointer, _ i: inout Int) {
        while i < t.count, t[i] == 0x20 || t[i] == 0x0A || t[i] == 0x0D || t[i] == 0x09 { i += 1 }
    }

    /// Moves `i` past the value starting at `i`.
    static func skipValue(_ t: UnsafeRawBufferPointer, _ i: inout Int) -> Bool {
        guard i < t.count else { return false }
        switch t[i] {
        case UInt8(ascii: "\""):
            return skipString(t, &i)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            while i < t.count {
                switch t[i] {
                case UInt8(ascii: "\""):
                    guard skipString(t, &i) else { return false }
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 {
                        i += 1
                        return true
                    }
                default:
                    break
                }
                i += 1
            }
            return false
        default:
            let start = i
            while i < t.count {
                let b = t[i]
                if b == UInt8(ascii: ",") || b == UInt8(ascii: "}") || b == UInt8(ascii: "]") || b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { break }
                i += 1
            }
            return i > start
        }
    }

    private static func skipString(_ t: UnsafeRawBufferPointer, _ i: inout Int) -> Bool {
        i += 1  // the opening quote
        while i < t.count {
            switch t[i] {
            case UInt8(ascii: "\\"): i += 2
            case UInt8(ascii: "\""):
                i += 1
                return true
            default: i += 1
            }
        }
        return false
    }
}
