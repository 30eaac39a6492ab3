import Foundation
@_spi(Fuzzing) @testable import PushlogCore
import Testing
import TestSupport

@Suite("JSON parser and serializer")
struct JSONTests {
    @Test("a valid document parses into the values it spells")
    func parsesValid() throws {
        let doc = #"""
         { "s": "a\"b\\c\/d\n\t\u00e9\ud83d\ude00", "i": -42, "z": 0, "d": 1.5, "e": 2e3, "E": -1.25E-2,
           "t": true, "f": false, "n": null, "a": [1, [], {}, "x"], "o": {"k": {"deep": [null]}} }
        """#
        let v = try JSON.parse(doc)
        #expect(v["s"] == .string("a\"b\\c/d\n\t\u{e9}\u{1F600}"))
        #expect(v["i"] == .int(-42))
        #expect(v["z"] == .int(0))
        #expect(v["d"] == .double(1.5))
        #expect(v["e"] == .double(2000))
        #expect(v["E"] == .double(-0.0125))
        #expect(v["t"] == .bool(true))
        #expect(v["f"] == .bool(false))
        #expect(v["n"] == .null)
        #expect(v["a"] == .array([.int(1), .array([]), .object([:]), .string("x")]))
        #expect(v["o"]?["k"]?["deep"] == .array([.null]))
        #expect(try JSON.parse("  7 ") == .int(7))
        #expect(try JSON.parse("\"\"") == .string(""))
    }

    @Test("integers are kept exact across the whole Int64 range")
    func bigIntegers() throws {
        #expect(try JSON.parse("9223372036854775807") == .int(.max))
        #expect(try JSON.parse("-9223372036854775808") == .int(.min))
        // 2^53 + 1 is where a Double would round.
        #expect(try JSON.parse("9007199254740993") == .int(9_007_199_254_740_993))
        #expect(try JSON.parse(#"{"stream_ordering": 1732900000000123}"#)["stream_ordering"] == .int(1_732_900_000_000_123))
        // Beyond Int64 it is a number, no longer an integer.
        #expect(try JSON.parse("9223372036854775808").intValue == nil)
        // Either side of the 18 digits read without making text, and the sign.
        #expect(try JSON.parse("999999999999999999") == .int(999_999_999_999_999_999))
        #expect(try JSON.parse("-99999999999999999") == .int(-99_999_999_999_999_999))
        #expect(try JSON.parse("-999999999999999999") == .int(-999_999_999_999_999_999))
        #expect(try JSON.parse("1000000000000000000") == .int(1_000_000_000_000_000_000))
        #expect(try JSON.parse("[0, -0, 7, -7]") == .array([.int(0), .int(0), .int(7), .int(-7)]))
    }

    @Test("strings with and without escapes, and where the two readings meet")
    func strings() throws {
        #expect(try JSON.parse(#""plain ünïcode 🎉""#) == .string("plain ünïcode 🎉"))
        #expect(try JSON.parse(#""""#) == .string(""))
        #expect(try JSON.parse(#""a\"b\\c\u00e9\ud83c\udf89""#) == .string("a\"b\\cé🎉"))
        #expect(try JSON.parse(#"{"k\n": "v"}"#) == .object(["k\n": .string("v")]))
        // A raw control character is refused whether or not an escape came before it.
        #expect(throws: JSONParseError.self) { try JSON.parse(Array("\"ab\u{01}c\"".utf8)) }
        #expect(throws: JSONParseError.self) { try JSON.parse(Array("\"a\\nb\u{01}c\"".utf8)) }
        // An unterminated string is refused, with or without an escape.
        #expect(throws: JSONParseError.self) { try JSON.parse(#""abc"#) }
        #expect(throws: JSONParseError.self) { try JSON.parse(#""a\tbc"#) }
    }

    @Test("invalid UTF-8 is refused, in strings and as raw bytes")
    func invalidUTF8() {
        for bad: [UInt8] in [
            [0x22, 0xFF, 0x22],                 // lone 0xFF
            [0x22, 0xC0, 0x80, 0x22],           // overlong NUL
            [0x22, 0xE2, 0x82, 0x22],           // truncated 3-byte sequence
            [0x22, 0xED, 0xA0, 0x80, 0x22],     // UTF-16 surrogate encoded in UTF-8
            [0x7B, 0x22, 0xF8, 0x22, 0x3A, 0x31, 0x7D],  // bad key
        ] {
            #expect(throws: JSONParseError.self, "\(bad)") { try JSON.parse(bad) }
        }
    }

    @Test("the parser's UTF-8 check agrees with the standard library's, byte sequence by byte sequence")
    func utf8CheckAgrees() throws {
        // Every one- and two-byte sequence, every lead byte with each boundary of the second
        // byte, then random runs biased to the bytes where UTF-8 has its edges.
        var cases: [[UInt8]] = (0...255).map { [UInt8($0)] }
        for a in 0...255 { for b in 0...255 { cases.append([UInt8(a), UInt8(b)]) } }
        let edges: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
                              0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
        for lead in edges { for second in edges { for third in edges { for fourth: UInt8 in [0x80, 0xBF, 0x41] {
            cases.append([lead, second, third, fourth])
        } } } }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            cases.append((0..<Int.random(in: 1...12, using: &rng)).map { _ in edges.randomElement(using: &rng)! })
        }
        var mismatches: [[UInt8]] = []
        for bytes in cases {
            let ours = bytes.withUnsafeBufferPointer { UTF8Check.isValid($0) }
            if ours != (String(validating: bytes, as: UTF8.self) != nil) { mismatches.append(bytes) }
            // And through the parser, as a string with and without an escape in front.
            guard !bytes.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) else { continue }
            for prefix: [UInt8] in [[], [0x5C, 0x6E]] {
                let parsed = try? JSON.parse([0x22] + prefix + bytes + [0x22])
                if (parsed != nil) != ours { mismatches.append(prefix + bytes) }
            }
        }
        #expect(mismatches.count == 0, "first: \(mismatches.prefix(5))")
        // A valid string comes back whole.
        #expect(try JSON.parse(Array("\"héllo 😀 \\n ✓\"".utf8)) == .string("héllo 😀 \n ✓"))
    }

    @Test("a member spelled as its sibling's is shared, and parses exactly as it would afresh, errors included")
    func siblingsShared() throws {
        // A batch's notifications repeat their event, actions and context byte for byte.
        let event = #"{"type": "m.room.message", "content": {"body": "hi", "n": [1, 2]}}"#
        let doc = #"{"notifications": ["# + (0..<3).map { #"{"user_id": "@u\#($0):x", "event": \#(event), "actions": ["notify"]}"# }
            .joined(separator: ", ") + "]}"
        let parsed = try JSON.parse(Array(doc.utf8))
        #expect(parsed == (try JSON.parse(Array(doc.utf8), sharingSiblings: false)))
        #expect(parsed.objectValue?["notifications"]?.arrayValue?.map { $0.objectValue?["event"] } == Array(repeating: try JSON.parse(event), count: 3))

        // Near misses of a remembered member: one byte changed, longer, shorter, cut off at the
        // end of the input, at another depth, and a document that goes on past a shared value.
        var rng = SystemRandomNumberGenerator()
        let pool = [#"{"a": 1}"#, #"{"a": 2}"#, #"{"a": 1, "b": []}"#, #"{"a":1}"#, "[1, 2]", "[1, 2, 3]", "[1]", "[]", "{}",
                    #"{"a": {"a": {"a": [1]}}}"#, #"{"a": {"a": {"a": [2]}}}"#, #""s""#, "7", #"[{"a": 1}, {"a": 1}]"#]
        func member() -> String { pool.randomElement(using: &rng)! }
        func object(_ depth: Int) -> String {
            let keys = ["a", "b", "e"].shuffled(using: &rng).prefix(Int.random(in: 1...3, using: &rng))
            return "{" + keys.map { k in "\"\(k)\":" + (depth > 0 && Bool.random(using: &rng) ? object(depth - 1) : member()) }
                .joined(separator: Bool.random(using: &rng) ? "," : " , ") + "}"
        }
        for _ in 0..<3_000 {
            var bytes = Array(("[" + (0..<Int.random(in: 1...6, using: &rng)).map { _ in object(2) }.joined(separator: ",") + "]").utf8)
            // Half of the documents damaged: a byte changed, dropped or the end cut off.
            switch Int.random(in: 0..<6, using: &rng) {
            case 0: bytes[Int.random(in: 0..<bytes.count, using: &rng)] = Array(#"{}[]:,"1a "#.utf8).randomElement(using: &rng)!
            case 1: bytes.remove(at: Int.random(in: 0..<bytes.count, using: &rng))
            case 2: bytes.removeLast(Int.random(in: 1...min(8, bytes.count), using: &rng))
            default: break
            }
            let shared = Result { try JSON.parse(bytes) }
            let afresh = Result { try JSON.parse(bytes, sharingSiblings: false) }
            switch (shared, afresh) {
            case (.success(let a), .success(let b)):
                #expect(a == b, "\(String(decoding: bytes, as: UTF8.self))")
            case (.failure(let a as JSONParseError), .failure(let b as JSONParseError)):
                #expect(a.offset == b.offset && a.reason == b.reason, "\(String(decoding: bytes, as: UTF8.self)): \(a) against \(b)")
            default:
                Issue.record("\(String(decoding: bytes, as: UTF8.self)): \(shared) against \(afresh)")
            }
        }
    }

    @Test("duplicate object keys are refused")
    func duplicateKeys() {
        let e = #expect(throws: JSONParseError.self) { try JSON.parse(#"{"a": 1, "b": 2, "a": 3}"#) }
        #expect(e?.reason.contains("duplicate") == true)
        #expect(throws: JSONParseError.self) { try JSON.parse(#"{"x": {"k": 1, "k": 1}}"#) }
        // The same key in sibling objects is fine.
        #expect(throws: Never.self) { try JSON.parse(#"[{"k": 1}, {"k": 2}]"#) }
    }

    @Test("nesting up to 64 levels parses; deeper is refused, however deep, without crashing")
    func deepNesting() throws {
        func arrays(_ n: Int) -> String { String(repeating: "[", count: n) + String(repeating: "]", count: n) }
        #expect(try JSON.parse(arrays(64)).arrayValue != nil)
        let e = #expect(throws: JSONParseError.self) { try JSON.parse(arrays(65)) }
        #expect(e?.reason.contains("deep") == true)
        #expect(throws: JSONParseError.self) { try JSON.parse(arrays(200_000)) }
        let objects = String(repeating: #"{"a":"#, count: 100) + "1" + String(repeating: "}", count: 100)
        #expect(throws: JSONParseError.self) { try JSON.parse(objects) }
    }

    @Test("malformed documents are refused", arguments: [
        "", " ", "{", "}", "[1,]", "[1 2]", "{\"a\" 1}", "{\"a\":}", "{a:1}", "{\"a\":1,}", "01", "-", "1.", ".5", "1e",
        "+1", "tru", "nul", "True", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
        "\"a\u{01}b\"", "\"tab\tin\"", "1 2", "{} x", "[\"a\"]]", "NaN", "1e999",
    ])
    func malformed(_ doc: String) {
        #expect(throws: JSONParseError.self) { try JSON.parse(doc) }
    }

    @Test("the error names the byte offset where parsing failed")
    func errorOffset() {
        let e = #expect(throws: JSONParseError.self) { try JSON.parse(#"{"a": tru}"#) }
        #expect(e?.offset == 6)
        #expect(e?.description.contains("byte 7") == true)
        // A string that is not UTF-8 is reported just past its closing quote, escaped or not.
        #expect((#expect(throws: JSONParseError.self) { try JSON.parse([0x5B, 0x22, 0xFF, 0x22, 0x5D]) })?.offset == 4)
        #expect((#expect(throws: JSONParseError.self) { try JSON.parse([0x5B, 0x22, 0x5C, 0x6E, 0xFF, 0x22, 0x5D]) })?.offset == 6)
    }

    @Test("serialization sorts keys and escapes what JSON requires")
    func serializes() {
        let v = JSON.object([
            "b": .array([.bool(true), .null, .string("x\"y\\z")]), "a": .int(-1),
            "c": .string("line\nret\rtab\t\u{01}\u{1F}é"), "d": .double(1.5), "e": .double(.infinity),
            "f": .object([:]), "g": .array([]),
        ])
        #expect(v.text == #"{"a":-1,"b":[true,null,"x\"y\\z"],"c":"line\nret\rtab\t\u0001\u001fé","d":1.5,"e":null,"f":{},"g":[]}"#)
        #expect(v.serializedCount == v.serialized().count)
        #expect(JSON.int(.min).text == "-9223372036854775808")
    }

    @Test("serialize then parse gives back the same value", arguments: [UInt64(1), 2, 3, 4, 5])
    func roundTrip(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        for _ in 0..<200 {
            let v = randomJSON(&rng, depth: 0)
            #expect(try JSON.parse(v.serialized()) == v)
            // The size bounds count without writing: the count is the bytes written.
            #expect(v.serializedCount == v.serialized().count, "\(v.text)")
            #expect(try JSON.parse(v.text) == v)
        }
    }

    func randomJSON(_ rng: inout SplitMix64, depth: Int) -> JSON {
        let pick = Int.random(in: 0..<(depth > 4 ? 5 : 7), using: &rng)
        switch pick {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return .int(Int64(bitPattern: rng.next()) >> Int64.random(in: 0..<63, using: &rng))
        case 3: return .double(Double(Int.random(in: -1000...1000, using: &rng)) / 8)
        case 4:
            let alphabet: [Character] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{01}", "é", "中", "🎉", "\u{7F}"]
            return .string(String((0..<Int.random(in: 0..<12, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }))
        case 5: return .array((0..<Int.random(in: 0..<4, using: &rng)).map { _ in randomJSON(&rng, depth: depth + 1) })
        default:
            var o: [String: JSON] = [:]
            for i in 0..<Int.random(in: 0..<4, using: &rng) { o["k\(i)\(["", "é", "\"", "\n"][i % 4])"] = randomJSON(&rng, depth: depth + 1) }
            return .object(o)
        }
    }

    @Test("truthiness follows Python's rules for tweaks")
    func truthiness() {
        #expect(!JSON.null.isTruthy)
        #expect(!JSON.bool(false).isTruthy && JSON.bool(true).isTruthy)
        #expect(!JSON.int(0).isTruthy && JSON.int(-1).isTruthy)
        #expect(!JSON.string("").isTruthy && JSON.string("default").isTruthy)
        #expect(!JSON.array([]).isTruthy && JSON.array([.null]).isTruthy)
        #expect(!JSON.object([:]).isTruthy && JSON.object(["a": .null]).isTruthy)
    }
}
