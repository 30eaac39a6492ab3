import Foundation
import PushlogCore
import Testing
@testable import PushlogMail
import TestSupport

/// Auto-linking of plain bodies: linear in the text, and the same links as before it was made so.
@Suite("link detection in plain bodies")
struct LinkDetectionTests {
    /// `http://x` then 60,000 `)`, 64 KiB in all: each `)` trimmed used to recount every
    /// parenthesis of the URL, about 1.8 billion steps.
    static let closingParens = "http://x" + String(repeating: ")", count: 60_000) + String(repeating: " ", count: 65_536 - 60_008)

    @Test("a 64 KiB body of http://x and 60,000 ) is linked in well under a second, the link still http://x")
    func manyClosingParentheses() {
        let clock = ContinuousClock()
        var html = ""
        let elapsed = clock.measure { html = HTMLSanitizer.plainToHTML(Self.closingParens) }
        #expect(elapsed < .seconds(1), "took \(elapsed)")
        #expect(html.hasPrefix("<a href=\"http://x\" rel=\"nofollow\">http://x</a>)))"))
        #expect(html.utf8.count - html.replacingOccurrences(of: ")", with: "").utf8.count == 60_000)
    }

    @Test("the same body as a message of a digest renders, text and HTML, in well under a second")
    func digestWithManyClosingParentheses() throws {
        let digest = DigestFixture.digest([DigestFixture.message("$p", body: Self.closingParens)])
        let renderer = DigestRenderer(templates: try DigestFixture.builtIn())
        let clock = ContinuousClock()
        var rendered: RenderedDigest?
        let elapsed = clock.measure { rendered = renderer.render(digest) }
        #expect(elapsed < .seconds(1), "took \(elapsed)")
        #expect(rendered?.html.contains("<a href=\"http://x\" rel=\"nofollow\">http://x</a>)") == true)
    }

    @Test("many URLs each ending in many ) stay linear too")
    func manyURLs() {
        let body = String(repeating: "http://a.b/" + String(repeating: ")", count: 500) + " ", count: 120)
        let clock = ContinuousClock()
        var html = ""
        let elapsed = clock.measure { html = HTMLSanitizer.plainToHTML(body) }
        #expect(elapsed < .seconds(1), "took \(elapsed)")
        #expect(html.occurrences(of: "<a href=\"http://a.b/\" rel=\"nofollow\">") == 120)
    }

    @Test("ordinary bodies link exactly as before", arguments: [
        "go to https://example.org/x.",
        "see https://example.org/a?b=c&d=e, then http://example.org/!",
        "(see http://w.org/A_(b))",
        "https://en.wikipedia.org/wiki/Pushlog_(software)_(2026)",
        "https://en.wikipedia.org/wiki/Foo_(bar)).",
        "((http://x.org/(a)(b)))",
        "http://x.org/(((",
        "http://x.org/a)b)c)",
        "http://x.org/.,;:!?'",
        "http://",
        "http://)))",
        "HTTPS://EXAMPLE.ORG/Up and hTTp://mixed.case/",
        "nothttps://x 1http://y éhttp://z _http://w",
        "<https://e.org/>\"quoted\" 'https://e.org/q'",
        "line one http://a.b/c\nline two https://d.e/(f)\r\nend",
        "http://x.org/😀) and https://日本.jp/パス).",
        "",
    ])
    func sameAsBefore(_ body: String) {
        #expect(HTMLSanitizer.plainToHTML(body) == Reference.plainToHTML(body))
    }

    @Test("random bodies made of URL pieces and brackets link exactly as before")
    func randomSameAsBefore() {
        var rng = SplitMix64(seed: 42)
        let pieces = ["http://", "https://", "x.org", "/", "(", ")", ")", ".", ",", "'", "!", " ", "\n", "a", "h", "é", "<", "\""]
        for _ in 0..<2_000 {
            let body = (0..<Int(rng.next() % 24)).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined()
            #expect(HTMLSanitizer.plainToHTML(body) == Reference.plainToHTML(body), "body \(String(reflecting: body))")
        }
    }
}


/// The linker as it was before it was made linear (it recounted the parentheses for each `)`
/// trimmed): the oracle for "the same output as before".
private enum Reference {
    static func plainToHTML(_ text: String) -> String {
        var out = ""
        let scalars = Array(text.unicodeScalars)
        var plainStart = 0
        var i = 0
        func flushPlain(to end: Int) {
            var chunk = String.UnicodeScalarView()
            chunk.append(contentsOf: scalars[plainStart..<end])
            out += HTMLSanitizer.escape(String(chunk)).replacing("\r\n", with: "\n").replacing("\n", with: "<br>\n")
        }
        while i < scalars.count {
            if let end = urlEnd(scalars, at: i) {
                flushPlain(to: i)
                var url = String.UnicodeScalarView()
                url.append(contentsOf: scalars[i..<end])
                let escaped = HTMLSanitizer.escape(String(url))
                out += "<a href=\"\(escaped)\" rel=\"nofollow\">\(escaped)</a>"
                i = end
                plainStart = end
            } else {
                i += 1
            }
        }
        flushPlain(to: scalars.count)
        return out
    }

    static func urlEnd(_ s: [Unicode.Scalar], at i: Int) -> Int? {
        guard s[i] == "h" || s[i] == "H" else { return nil }
        if i > 0, s[i - 1].properties.isAlphabetic || ("0"..."9").contains(s[i - 1]) { return nil }
        var prefixEnd: Int?
        for scheme in ["http://", "https://"] {
            let p = Array(scheme.unicodeScalars)
            if i + p.count < s.count,
                zip(s[i..<(i + p.count)], p).allSatisfy({ String($0).lowercased() == String($1) }) {
                prefixEnd = i + p.count
            }
        }
        guard let start = prefixEnd else { return nil }
        var end = start
        while end < s.count, !s[end].properties.isWhitespace, !"<>\"".unicodeScalars.contains(s[end]) { end += 1 }
        while end > start {
            let last = s[end - 1]
            if ".,;:!?'".unicodeScalars.contains(last) {
                end -= 1
            } else if last == ")",
                s[start..<end].filter({ $0 == "(" }).count < s[start..<end].filter({ $0 == ")" }).count {
                end -= 1
            } else {
                break
            }
        }
        return end > start ? end : nil
    }
}
