/// `text` escaped for HTML text and quoted attribute values, for pages outside the mail too (the
/// unsubscribe confirmation).
public func escapeHTML(_ text: String) -> String { HTMLSanitizer.escape(text) }

/// Plain text for the HTML part: escaping, and plain bodies with their links.
extension HTMLSanitizer {
    /// Escapes `&`, `<`, `>`, `"` and `'`: safe in text and in quoted attribute values.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// A plain body as HTML: escaped, `http(s)://` URLs made links with `rel="nofollow"`, line
    /// breaks kept.
    static func plainToHTML(_ text: String) -> String {
        var out = ""
        let scalars = Array(text.unicodeScalars)
        var plainStart = 0
        var i = 0
        func flushPlain(to end: Int) {
            var chunk = String.UnicodeScalarView()
            chunk.append(contentsOf: scalars[plainStart..<end])
            out += escape(String(chunk)).replacing("\r\n", with: "\n").replacing("\n", with: "<br>\n")
        }
        while i < scalars.count {
            if let end = urlEnd(scalars, at: i) {
                flushPlain(to: i)
                var url = String.UnicodeScalarView()
                url.append(contentsOf: scalars[i..<end])
                let escaped = escape(String(url))
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

    /// Where a URL starting at `i` ends, if one starts there: `http://` or `https://` after a
    /// non-alphanumeric, up to white space or `<>"`, less trailing punctuation.
    private static func urlEnd(_ s: [Unicode.Scalar], at i: Int) -> Int? {
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
        // The parentheses are counted once and kept up to date as the end moves back: counting
        // them again for each `)` trimmed made a URL followed by many `)` quadratic.
        var opens = 0
        var closes = 0
        for c in s[start..<end] {
            if c == "(" { opens += 1 } else if c == ")" { closes += 1 }
        }
        while end > start {
            let last = s[end - 1]
            if ".,;:!?'".unicodeScalars.contains(last) {
                end -= 1
            } else if last == ")", opens < closes {
                end -= 1
                closes -= 1
            } else {
                break
            }
        }
        return end > start ? end : nil
    }
}
