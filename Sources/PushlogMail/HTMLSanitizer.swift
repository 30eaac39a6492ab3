/// Message bodies as HTML that is safe to put in an email: our own small allow-list sanitiser for
/// Matrix `formatted_body` (like Synapse's bleach settings), escaping, and linkified plain text.
///
/// The sanitiser never passes input through: it tokenises the HTML the way a browser would and
/// writes every allowed tag and attribute anew, escaped; everything else is dropped or escaped.
enum HTMLSanitizer {
    /// Synapse's `ALLOWED_TAGS`, plus `img` (only with an `mxc://` source, shown as a thumbnail).
    static let allowedTags: Set<String> = [
        "font", "del", "h3", "h4", "h5", "h6", "blockquote", "p", "a", "ul", "ol", "nl", "li", "b", "i", "u",
        "strong", "em", "strike", "code", "hr", "br", "div", "table", "thead", "caption", "tbody", "tr",
        "th", "td", "pre", "img",
    ]
    static let voidTags: Set<String> = ["br", "hr", "img"]
    /// Dropped together with everything up to their end tag (a reply fallback is not the message).
    static let droppedWithContent: Set<String> = [
        "script", "style", "iframe", "object", "textarea", "title", "xmp", "noembed", "noframes", "noscript",
        "template", "svg", "math", "head", "select", "mx-reply",
    ]
    static let maxDepth = 64

    /// `formatted_body` as safe HTML. `thumbnail` turns an `mxc://` image source into an http(s)
    /// link, or nil (the image is then dropped).
    static func sanitize(_ html: String, thumbnail: (String) -> String?) -> String {
        withoutActuallyEscaping(thumbnail) { thumbnail in
            var sanitizer = Sanitizer(input: Array(html.utf8), thumbnail: thumbnail)
            return sanitizer.run()
        }
    }
}

/// One pass over the bytes of a `formatted_body`.
private struct Sanitizer {
    let input: [UInt8]
    let thumbnail: (String) -> String?
    var i = 0
    var out: [UInt8] = []
    /// The allowed elements opened by the input and not closed yet.
    var open: [String] = []

    init(input: [UInt8], thumbnail: @escaping (String) -> String?) {
        self.input = input
        self.thumbnail = thumbnail
        out.reserveCapacity(input.count)
    }

    mutating func run() -> String {
        while i < input.count {
            switch input[i] {
            case UInt8(ascii: "<"): markup()
            case UInt8(ascii: "&"): textEntity()
            case UInt8(ascii: ">"): emit("&gt;"); i += 1
            case 0: i += 1
            case let byte: out.append(byte); i += 1
            }
        }
        // Close what the input left open, so nothing leaks into the email around it.
        for name in open.reversed() { emit("</\(name)>") }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: Tokens

    private mutating func markup() {
        let next = byte(at: i + 1)
        if next == UInt8(ascii: "!") {
            if starts(with: "<!--", at: i) {
                i = find("-->", from: i + 4).map { $0 + 3 } ?? input.count
            } else {
                skip(past: UInt8(ascii: ">"))  // doctype, CDATA, bogus comment
            }
        } else if next == UInt8(ascii: "?") {
            skip(past: UInt8(ascii: ">"))
        } else if next == UInt8(ascii: "/") {
            if let c = byte(at: i + 2), isAlpha(c) {
                i += 2
                let name = tagName()
                guard attributes() != nil else { i = input.count; return }  // end of input inside a tag
                close(name)
            } else {
                skip(past: UInt8(ascii: ">"))
            }
        } else if let c = next, isAlpha(c) {
            i += 1
            let name = tagName()
            guard let attrs = attributes() else { i = input.count; return }
            openTag(name, attrs)
        } else {
            emit("&lt;")
            i += 1
        }
    }

    /// A character reference is kept as it is (the browser shows it as text); a lone `&` is escaped.
    private mutating func textEntity() {
        var j = i + 1
        if byte(at: j) == UInt8(ascii: "#") {
            j += 1
            let hex = byte(at: j) == UInt8(ascii: "x") || byte(at: j) == UInt8(ascii: "X")
            if hex { j += 1 }
            let digitsStart = j
            while let c = byte(at: j), hex ? isHexDigit(c) : isDigit(c), j - digitsStart < 8 { j += 1 }
            if j > digitsStart, byte(at: j) == UInt8(ascii: ";") { return copy(through: j) }
        } else {
            let nameStart = j
            while let c = byte(at: j), isAlpha(c) || isDigit(c), j - nameStart < 32 { j += 1 }
            if j > nameStart, isAlpha(input[nameStart]), byte(at: j) == UInt8(ascii: ";") { return copy(through: j) }
        }
        emit("&amp;")
        i += 1
    }

    private mutating func copy(through end: Int) {
        out.append(contentsOf: input[i...end])
        i = end + 1
    }

    /// A tag name, lowercased; reads up to white space, `/` or `>`.
    private mutating func tagName() -> String {
        let start = i
        while let c = byte(at: i), !isSpace(c), c != UInt8(ascii: "/"), c != UInt8(ascii: ">") { i += 1 }
        return lowercased(input[start..<i])
    }

    /// The attributes up to and past the closing `>`, values decoded; the first of a name wins.
    /// nil when the input ends inside the tag.
    private mutating func attributes() -> [(name: String, value: String)]? {
        var attrs: [(name: String, value: String)] = []
        while true {
            while let c = byte(at: i), isSpace(c) || c == UInt8(ascii: "/") { i += 1 }
            guard let c = byte(at: i) else { return nil }
            if c == UInt8(ascii: ">") { i += 1; return attrs }
            let nameStart = i
            i += 1
            while let c = byte(at: i), !isSpace(c), c != UInt8(ascii: "/"), c != UInt8(ascii: ">"), c != UInt8(ascii: "=") {
                i += 1
            }
            let name = lowercased(input[nameStart..<i])
            while let c = byte(at: i), isSpace(c) { i += 1 }
            var value = ""
            if byte(at: i) == UInt8(ascii: "=") {
                i += 1
                while let c = byte(at: i), isSpace(c) { i += 1 }
                guard let first = byte(at: i) else { return nil }
                if first == UInt8(ascii: "\"") || first == UInt8(ascii: "'") {
                    i += 1
                    let valueStart = i
                    while let c = byte(at: i), c != first { i += 1 }
                    guard i < input.count else { return nil }
                    value = decodeCharacterReferences(input[valueStart..<i])
                    i += 1
                } else {
                    let valueStart = i
                    while let c = byte(at: i), !isSpace(c), c != UInt8(ascii: ">") { i += 1 }
                    value = decodeCharacterReferences(input[valueStart..<i])
                }
            }
            if !attrs.contains(where: { $0.name == name }) { attrs.append((name, value)) }
        }
    }

    // MARK: Elements

    private mutating func openTag(_ name: String, _ attrs: [(name: String, value: String)]) {
        if HTMLSanitizer.droppedWithContent.contains(name) { return skipElement(name) }
        guard HTMLSanitizer.allowedTags.contains(name), open.count < HTMLSanitizer.maxDepth else { return }
        // Table parts only inside a table of the message: a stray <td> would split the email's own cell.
        switch name {
        case "caption", "thead", "tbody": guard open.last == "table" else { return }
        case "tr": guard let parent = open.last, ["table", "thead", "tbody"].contains(parent) else { return }
        case "td", "th": guard open.last == "tr" else { return }
        default: break
        }
        func value(_ key: String) -> String? { attrs.first { $0.name == key }?.value }
        var tag = "<" + name
        switch name {
        case "a":
            if let href = value("href"), let link = Self.safeLink(href) {
                tag += " href=\"\(HTMLSanitizer.escape(link.url))\""
                if link.isHTTP { tag += " rel=\"nofollow\"" }
            }
            if let anchor = value("name") { tag += " name=\"\(HTMLSanitizer.escape(anchor))\"" }
            if let target = value("target") { tag += " target=\"\(HTMLSanitizer.escape(target))\"" }
        case "font":
            if let color = value("color"), Self.isColor(color) { tag += " color=\"\(color)\"" }
        case "img":
            guard let src = value("src"), let url = thumbnail(src.trimmingSpaces) else { return }
            tag += " src=\"\(HTMLSanitizer.escape(url))\""
            if let alt = value("alt") { tag += " alt=\"\(HTMLSanitizer.escape(alt))\"" }
            for key in ["width", "height"] {
                if let v = value(key), (1...4).contains(v.count), v.allSatisfy(\.isASCIIDigit) { tag += " \(key)=\"\(v)\"" }
            }
        default:
            break
        }
        emit(tag + ">")
        if !HTMLSanitizer.voidTags.contains(name) { open.append(name) }
    }

    /// Closes `name` and what was opened inside it; an end tag matching nothing open is dropped.
    private mutating func close(_ name: String) {
        guard let index = open.lastIndex(of: name) else { return }
        for element in open[index...].reversed() { emit("</\(element)>") }
        open.removeSubrange(index...)
    }

    /// Skips to past `</name …>` (or to the end of the input).
    private mutating func skipElement(_ name: String) {
        let needle = Array("</\(name)".utf8)
        var j = i
        while let k = find(needle, from: j, caseInsensitive: true) {
            let after = byte(at: k + needle.count)
            if after == nil || isSpace(after!) || after == UInt8(ascii: "/") || after == UInt8(ascii: ">") {
                i = k + needle.count
                skip(past: UInt8(ascii: ">"))
                return
            }
            j = k + 1
        }
        i = input.count
    }

    /// An `http`, `https` or `mailto` link as the browser would read it (surrounding spaces and
    /// controls, inner tabs and line breaks removed); nil for any other scheme or none.
    static func safeLink(_ href: String) -> (url: String, isHTTP: Bool)? {
        let url = String(String.UnicodeScalarView(href.trimmingSpaces.unicodeScalars.filter { !["\t", "\n", "\r"].contains($0) }))
        guard let colon = url.firstIndex(of: ":") else { return nil }
        let scheme = url[..<colon].lowercased()
        switch scheme {
        case "http", "https": return (url, true)
        case "mailto": return (url, false)
        default: return nil
        }
    }

    static func isColor(_ value: String) -> Bool {
        let body = value.hasPrefix("#") ? value.dropFirst() : Substring(value)
        return (1...20).contains(body.count) && body.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
    }

    // MARK: Bytes

    private func byte(at index: Int) -> UInt8? { index < input.count ? input[index] : nil }

    private mutating func emit(_ text: String) { out.append(contentsOf: text.utf8) }

    private mutating func skip(past byte: UInt8) {
        while i < input.count, input[i] != byte { i += 1 }
        i = min(i + 1, input.count)
    }

    private func starts(with text: String, at index: Int) -> Bool {
        let bytes = Array(text.utf8)
        return index + bytes.count <= input.count && Array(input[index..<(index + bytes.count)]) == bytes
    }

    private func find(_ text: String, from start: Int) -> Int? { find(Array(text.utf8), from: start, caseInsensitive: false) }

    private func find(_ needle: [UInt8], from start: Int, caseInsensitive: Bool) -> Int? {
        guard !needle.isEmpty, input.count >= needle.count, start <= input.count - needle.count else { return nil }
        outer: for k in start...(input.count - needle.count) {
            for (offset, expected) in needle.enumerated() {
                let actual = input[k + offset]
                if actual != expected && !(caseInsensitive && lower(actual) == lower(expected)) { continue outer }
            }
            return k
        }
        return nil
    }

    private func lower(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c + 0x20 : c }
    private func lowercased(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes.map(lower), as: UTF8.self) }
    private func isAlpha(_ c: UInt8) -> Bool { (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A }
    private func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    private func isHexDigit(_ c: UInt8) -> Bool { isDigit(c) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66) }
    private func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0C || c == 0x0D }
}

// MARK: - Character references in attribute values

/// Decodes numeric references (with or without `;`) and the named ones that matter for URLs, as
/// a browser does before it reads an attribute; an unknown reference stays literal text.
private func decodeCharacterReferences(_ bytes: ArraySlice<UInt8>) -> String {
    let text = String(decoding: bytes, as: UTF8.self)
    guard text.contains("&") else { return text }
    var out = String.UnicodeScalarView()
    let s = Array(text.unicodeScalars)
    var i = 0
    while i < s.count {
        guard s[i] == "&" else { out.append(s[i]); i += 1; continue }
        var j = i + 1
        if j < s.count, s[j] == "#" {
            j += 1
            let hex = j < s.count && (s[j] == "x" || s[j] == "X")
            if hex { j += 1 }
            let start = j
            var value: UInt32 = 0
            while j < s.count, let digit = hexValue(s[j]), hex || digit < 10 {
                value = value > 0x10FFFF ? value : value * (hex ? 16 : 10) + digit
                j += 1
            }
            if j > start {
                if j < s.count, s[j] == ";" { j += 1 }
                out.append(value == 0 ? "\u{FFFD}" : Unicode.Scalar(value) ?? "\u{FFFD}")
                i = j
                continue
            }
        } else {
            while j < s.count, s[j].properties.isAlphabetic || ("0"..."9").contains(s[j]), j - i < 33 { j += 1 }
            let name = String(String.UnicodeScalarView(s[(i + 1)..<j]))
            if let decoded = namedReferences[name] {
                if j < s.count, s[j] == ";" { j += 1 }
                out.append(contentsOf: decoded.unicodeScalars)
                i = j
                continue
            }
        }
        out.append("&")
        i += 1
    }
    return String(out)
}

private func hexValue(_ c: Unicode.Scalar) -> UInt32? {
    switch c {
    case "0"..."9": c.value - 0x30
    case "a"..."f": c.value - 0x61 + 10
    case "A"..."F": c.value - 0x41 + 10
    default: nil
    }
}

private let namedReferences: [String: String] = [
    "amp": "&", "AMP": "&", "lt": "<", "LT": "<", "gt": ">", "GT": ">", "quot": "\"", "QUOT": "\"",
    "apos": "'", "nbsp": "\u{A0}", "colon": ":", "Tab": "\t", "NewLine": "\n", "sol": "/", "bsol": "\\",
    "lpar": "(", "rpar": ")", "period": ".", "comma": ",", "semi": ";", "excl": "!", "quest": "?",
    "num": "#", "percnt": "%", "equals": "=", "commat": "@", "plus": "+", "lowbar": "_", "hyphen": "-",
]

extension String {
    /// Without leading and trailing C0 controls and spaces (what a browser strips from a URL).
    fileprivate var trimmingSpaces: String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { $0.value > 0x20 }),
            let last = scalars.lastIndex(where: { $0.value > 0x20 })
        else { return "" }
        return String(scalars[first...last])
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
