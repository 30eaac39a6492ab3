#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A JSON value. Parsed by our own strict parser (UTF-8 checked, integers kept exact) and
/// written back with sorted keys, so the same value always has the same bytes.
public enum JSON: Sendable, Equatable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    public subscript(key: String) -> JSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var objectValue: [String: JSON]? { if case .object(let o) = self { return o }; return nil }
    public var arrayValue: [JSON]? { if case .array(let a) = self { return a }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var intValue: Int64? { if case .int(let i) = self { return i }; return nil }
    public var isNull: Bool { if case .null = self { return true }; return false }

    /// Truthiness in the Python sense Synapse uses for tweaks: false, null, 0, "" , [] and {} are false.
    public var isTruthy: Bool {
        switch self {
        case .null: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .array(let a): return !a.isEmpty
        case .object(let o): return !o.isEmpty
        }
    }

    /// The name of the value's type as a JSON reader would say it.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .int, .double: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

// MARK: - Writing

extension JSON {
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        write(to: &out)
        return out
    }

    public var text: String { String(decoding: serialized(), as: UTF8.self) }

    /// How many bytes ``serialized()`` writes, counted without writing them (nor sorting keys,
    /// which does not change the count): for the size bounds checked before anything is stored.
    public var serializedCount: Int {
        switch self {
        case .null: return 4
        case .bool(let b): return b ? 4 : 5
        case .int(let i): return String(i).utf8.count
        case .double(let d): return d.isFinite ? "\(d)".utf8.count : 4
        case .string(let s): return JSON.stringCount(s)
        case .array(let a):
            var n = 2 + max(0, a.count - 1)
            for v in a { n += v.serializedCount }
            return n
        case .object(let o):
            var n = 2 + max(0, o.count - 1)
            for (k, v) in o { n += JSON.stringCount(k) + 1 + v.serializedCount }
            return n
        }
    }

    /// The bytes ``writeString(_:to:)`` writes for `s`: its UTF-8, two quotes, one more byte per
    /// two-character escape and five more per `\u00XX`.
    static func stringCount(_ s: String) -> Int {
        var s = s
        return s.withUTF8 { u in
            var n = u.count + 2
            for b in u {
                if let e = escapeLetter(b) { n += e == UInt8(ascii: "u") ? 5 : 1 }
            }
            return n
        }
    }

    /// How a string's byte `b` is written: nil as it is, else escaped, with the letter that
    /// follows the backslash (`u` for `\u00XX`). The one home of the escaping rule, for
    /// ``writeString(_:to:)`` and ``stringCount(_:)``.
    @inline(__always)
    static func escapeLetter(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x22, 0x5C: return b
        case 0x0A: return UInt8(ascii: "n")
        case 0x0D: return UInt8(ascii: "r")
        case 0x09: return UInt8(ascii: "t")
        case ..<0x20: return UInt8(ascii: "u")
        default: return nil
        }
    }

    public func write(to out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .double(let d):
            if d.isFinite { out.append(contentsOf: "\(d)".utf8) } else { out.append(contentsOf: "null".utf8) }
        case .string(let s): JSON.writeString(s, to: &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                v.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            // Sorted keys, so the same object always has the same bytes.
            let pairs = o.count < 2 ? Array(o) : o.sorted { $0.key < $1.key }
            for (i, (k, v)) in pairs.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSON.writeString(k, to: &out)
                out.append(UInt8(ascii: ":"))
                v.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func writeString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { u in
            // Most strings need no escaping: copy them whole.
            var start = 0
            for i in 0..<u.count {
                let b = u[i]
                guard let e = escapeLetter(b) else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: u[start..<i]))
                start = i + 1
                if e == UInt8(ascii: "u") {
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    out.append(contentsOf: [0x5C, e, 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 0xF)]])
                } else {
                    out.append(contentsOf: [0x5C, e])
                }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: u[start..<u.count]))
        }
        out.append(UInt8(ascii: "\""))
    }
}

// MARK: - Parsing

public struct JSONParseError: Error, CustomStringConvertible, Sendable {
    public let offset: Int
    public let reason: String
    public var description: String { "invalid JSON at byte \(offset + 1): \(reason)" }
}

extension JSON {
    /// Parses exactly one JSON value (surrounding whitespace allowed). Refuses invalid UTF-8,
    /// nesting deeper than 64 levels, and duplicate object keys.
    public static func parse(_ bytes: some Collection<UInt8>) throws -> JSON {
        try parse(bytes, sharingSiblings: true)
    }

    /// `sharingSiblings: false` parses every member afresh: the reference the tests and the
    /// fuzzer hold the shared parse to.
    @_spi(Fuzzing) public static func parse(_ bytes: some Collection<UInt8>, sharingSiblings: Bool) throws -> JSON {
        var buffer = Array(bytes)
        return try buffer.withUnsafeMutableBufferPointer { buf in
            var p = Parser(buf: UnsafeBufferPointer(buf), sizeHints: [Int](repeating: 0, count: Parser.maxDepth + 1),
                           sharesSiblings: sharingSiblings)
            p.skipSpace()
            let v = try p.value(depth: 0)
            p.skipSpace()
            if p.i != buf.count { throw p.fail("unexpected data after the value") }
            return v
        }
    }

    public static func parse(_ text: String) throws -> JSON { try parse(Array(text.utf8)) }
}

private struct Parser {
    static let maxDepth = 64
    let buf: UnsafeBufferPointer<UInt8>
    var i = 0
    /// By depth, the size of the last object or array finished there, at most ``sizeHintCap``:
    /// its next sibling is made with that room, not grown and rehashed from empty (a batch's
    /// notifications all have the same keys). The cap keeps a large sibling from reserving room
    /// for many small.
    var sizeHints: [Int]
    static let sizeHintCap = 16
    let sharesSiblings: Bool
    /// Object and array members lately read, with where their bytes lie: a sibling's member of
    /// the same name spelled with the same bytes (every notification of one event in a batch
    /// carries the same `event`, `actions` and `context`) is not parsed again but shares the
    /// value, hence its storage, which the entry codec then writes once. At most
    /// ``recentLimit``, found by depth and name.
    var recent: [Recent] = []
    var recentNext = 0
    static let recentLimit = 16

    struct Recent {
        let depth: Int
        let key: String
        let start: Int
        let count: Int
        let value: JSON
    }

    /// The member `key` at `depth`: the remembered value when the bytes at `i` are its bytes
    /// (identical bytes are an identical value: a JSON value ends where its bytes say), `i` then
    /// past them; else parsed, and remembered in place of the last one of that name.
    mutating func member(depth: Int, key: String) throws -> JSON {
        let slot = recent.firstIndex { $0.depth == depth && $0.key == key }
        if let slot {
            let r = recent[slot]
            if r.count <= buf.count - i, memcmp(buf.baseAddress! + i, buf.baseAddress! + r.start, r.count) == 0 {
                i += r.count
                return r.value
            }
        }
        let start = i
        let v = try value(depth: depth)
        let r = Recent(depth: depth, key: key, start: start, count: i - start, value: v)
        if let slot {
            recent[slot] = r
        } else if recent.count < Self.recentLimit {
            recent.append(r)
        } else {
            recent[recentNext] = r
            recentNext = (recentNext + 1) % Self.recentLimit
        }
        return v
    }

    func fail(_ reason: String) -> JSONParseError { JSONParseError(offset: i, reason: reason) }

    mutating func skipSpace() {
        while i < buf.count, buf[i] == 0x20 || buf[i] == 0x0A || buf[i] == 0x0D || buf[i] == 0x09 { i += 1 }
    }

    mutating func value(depth: Int) throws -> JSON {
        guard depth < Parser.maxDepth else { throw fail("nested too deeply") }
        guard i < buf.count else { throw fail("unexpected end of input") }
        switch buf[i] {
        case UInt8(ascii: "{"):
            i += 1
            skipSpace()
            if i < buf.count, buf[i] == UInt8(ascii: "}") { i += 1; return .object([:]) }
            var o = [String: JSON](minimumCapacity: sizeHints[depth])
            while true {
                skipSpace()
                guard i < buf.count, buf[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let k = try string()
                skipSpace()
                guard i < buf.count, buf[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                i += 1
                skipSpace()
                let v = sharesSiblings && i < buf.count && (buf[i] == UInt8(ascii: "{") || buf[i] == UInt8(ascii: "["))
                    ? try member(depth: depth + 1, key: k) : try value(depth: depth + 1)
                if o.updateValue(v, forKey: k) != nil { throw fail("duplicate key \"\(k)\"") }
                skipSpace()
                guard i < buf.count else { throw fail("unexpected end of input") }
                if buf[i] == UInt8(ascii: ",") { i += 1; continue }
                if buf[i] == UInt8(ascii: "}") { i += 1; sizeHints[depth] = min(o.count, Self.sizeHintCap); return .object(o) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            i += 1
            skipSpace()
            if i < buf.count, buf[i] == UInt8(ascii: "]") { i += 1; return .array([]) }
            var a: [JSON] = []
            a.reserveCapacity(sizeHints[depth])
            while true {
                skipSpace()
                a.append(try value(depth: depth + 1))
                skipSpace()
                guard i < buf.count else { throw fail("unexpected end of input") }
                if buf[i] == UInt8(ascii: ",") { i += 1; continue }
                if buf[i] == UInt8(ascii: "]") { i += 1; sizeHints[depth] = min(a.count, Self.sizeHintCap); return .array(a) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default:
            return try number()
        }
    }

    mutating func literal(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        guard i + n <= buf.count else { throw fail("unexpected end of input") }
        for k in 0..<n where buf[i + k] != word.utf8Start[k] { throw fail("invalid literal") }
        i += n
    }

    mutating func number() throws -> JSON {
        let start = i
        var isInt = true
        if i < buf.count, buf[i] == UInt8(ascii: "-") { i += 1 }
        guard i < buf.count, buf[i] >= 0x30, buf[i] <= 0x39 else { throw fail("invalid value") }
        if buf[i] == 0x30, i + 1 < buf.count, buf[i + 1] >= 0x30, buf[i + 1] <= 0x39 {
            throw fail("leading zero in number")
        }
        while i < buf.count, buf[i] >= 0x30, buf[i] <= 0x39 { i += 1 }
        if i < buf.count, buf[i] == UInt8(ascii: ".") {
            isInt = false
            i += 1
            guard i < buf.count, buf[i] >= 0x30, buf[i] <= 0x39 else { throw fail("invalid number") }
            while i < buf.count, buf[i] >= 0x30, buf[i] <= 0x39 { i += 1 }
        }
        if i < buf.count, buf[i] == UInt8(ascii: "e") || buf[i] == UInt8(ascii: "E") {
            isInt = false
            i += 1
            if i < buf.count, buf[i] == UInt8(ascii: "+") || buf[i] == UInt8(ascii: "-") { i += 1 }
            guard i < buf.count, buf[i] >= 0x30, buf[i] <= 0x39 else { throw fail("invalid number") }
            while i < buf.count, buf[i] >= 0x30, buf[i] <= 0x39 { i += 1 }
        }
        if isInt, i - start <= 18 {
            // At most 18 digits (and a sign) always fit in an Int64: no text to make.
            var index = start
            let negative = buf[index] == UInt8(ascii: "-")
            if negative { index += 1 }
            var v: Int64 = 0
            while index < i {
                v = v &* 10 &+ Int64(buf[index] &- 0x30)
                index += 1
            }
            return .int(negative ? -v : v)
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<i]), as: UTF8.self)
        if isInt, let v = Int64(text) { return .int(v) }
        guard let d = Double(text), d.isFinite else { throw JSONParseError(offset: start, reason: "number out of range") }
        return .double(d)
    }

    mutating func hex4() throws -> UInt32 {
        guard i + 4 <= buf.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = buf[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    mutating func string() throws -> String {
        i += 1  // opening quote
        // Most strings hold no escape: make the String straight from the input, without
        // collecting its bytes first.
        var end = i
        var high: UInt8 = 0  // every byte or-ed: below 0x80 means ASCII, valid as it stands
        while end < buf.count {
            let c = buf[end]
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c < 0x20 { break }
            high |= c
            end += 1
        }
        if end < buf.count, buf[end] == UInt8(ascii: "\"") {
            let content = UnsafeBufferPointer(rebasing: buf[i..<end])
            i = end + 1  // an invalid string is reported past its closing quote, as below
            guard high < 0x80 || UTF8Check.isValid(content) else { throw fail("string is not valid UTF-8") }
            return String(decoding: content, as: UTF8.self)
        }
        // An escape, a control character or the end of the input at `end`: the bytes before it
        // are plain, so the byte-by-byte reading below starts there.
        var out: [UInt8] = []
        var start = i
        i = end
        while true {
            guard i < buf.count else { throw fail("unterminated string") }
            let c = buf[i]
            if c == UInt8(ascii: "\"") {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[start..<i]))
                i += 1
                break
            }
            if c < 0x20 { throw fail("control character in string") }
            if c == UInt8(ascii: "\\") {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[start..<i]))
                i += 1
                guard i < buf.count else { throw fail("unterminated string") }
                let e = buf[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard i + 2 <= buf.count, buf[i] == UInt8(ascii: "\\"), buf[i + 1] == UInt8(ascii: "u") else {
                            throw fail("unpaired surrogate in \\u escape")
                        }
                        i += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate in \\u escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw fail("unpaired surrogate in \\u escape")
                    }
                    out.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
                default: throw fail("invalid escape")
                }
                start = i
                continue
            }
            i += 1
        }
        return try out.withUnsafeBufferPointer { content in
            guard UTF8Check.isValid(content) else { throw fail("string is not valid UTF-8") }
            return String(decoding: content, as: UTF8.self)
        }
    }
}

/// Well-formed UTF-8 as Unicode's table 3-7 has it: no overlong forms, no surrogates, nothing
/// past U+10FFFF, nothing cut short. The parser checks with this and then makes the `String`
/// with `String(decoding:as:)`, which has nothing left to repair: the standard library's
/// `String(validating:as:)` is generic over the encoding and was a tenth of a POST's time.
enum UTF8Check {
    static func isValid(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        let n = b.count
        while i < n {
            let c = b[i]
            if c < 0x80 { i += 1; continue }
            let trailing: Int
            var low: UInt8 = 0x80, high: UInt8 = 0xBF  // the bounds of the second byte
            switch c {
            case 0xC2...0xDF: trailing = 1
            case 0xE0: trailing = 2; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: trailing = 2
            case 0xED: trailing = 2; high = 0x9F
            case 0xF0: trailing = 3; low = 0x90
            case 0xF1...0xF3: trailing = 3
            case 0xF4: trailing = 3; high = 0x8F
            default: return false
            }
            guard n - i > trailing, b[i + 1] >= low, b[i + 1] <= high else { return false }
            var k = 2
            while k <= trailing {
                guard b[i + k] & 0xC0 == 0x80 else { return false }
                k += 1
            }
            i += trailing + 1
        }
        return true
    }
}
