/// Writes header fields that cannot be used to inject anything: free text is sanitised and,
/// when not plain ASCII, encoded as RFC 2047 encoded-words; every field is folded to lines of
/// at most 78 characters where it has spaces to fold at, and ends with CRLF.
///
/// Why control characters become spaces rather than an error: a subject or display name
/// comes from room names and profiles that any Matrix user controls; a mail must still go
/// out, and a space keeps the words apart. Addresses and URLs are checked instead (see
/// ``MailAddress``), because changing them would send mail somewhere else.
enum HeaderField {
    /// `Name: text` for unstructured text (`Subject`).
    static func unstructured(_ name: String, _ text: String) -> String {
        let clean = sanitised(text)
        if isPlain(clean) {
            // Splitting at single spaces keeps runs of spaces: folding only inserts CRLF
            // before a space that was already there, so unfolding gives the text back exactly.
            return folded(name, clean.split(separator: " ", omittingEmptySubsequences: false).map(String.init))
        }
        return folded(name, encodedWords(clean))
    }

    /// `Name: Display Name <local@domain>`, or `Name: local@domain` without a display name.
    static func address(_ name: String, _ mailbox: MailAddress) -> String {
        let display = sanitised(mailbox.displayName ?? "")
        guard !display.allSatisfy({ $0 == " " }) else {
            return folded(name, [mailbox.address])
        }
        return folded(name, phrase(display) + ["<\(mailbox.address)>"])
    }

    /// `Name: value` for a value built here and known to be safe: printable ASCII, and any CRLF
    /// in it followed by a space (a fold).
    static func raw(_ name: String, _ value: String) -> String {
        "\(name): \(value)\r\n"
    }

    // MARK: Pieces

    /// `text` with every control character (C0, DEL, C1, and the Unicode line and paragraph
    /// separators) replaced by a space, so nothing in it can end the header line.
    static func sanitised(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029:
                scalars.append(" ")
            default:
                scalars.append(scalar)
            }
        }
        return String(scalars)
    }

    /// Whether `text` may be written as it is: printable ASCII, nothing a reader would take
    /// for an encoded-word, and no word too long to fold.
    private static func isPlain(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
            && !text.contains("=?")
            && !text.split(separator: " ").contains { $0.utf8.count > 70 }
    }

    /// A display name as words: atoms as they are, other ASCII as one quoted-string, and
    /// anything else (non-ASCII, very long) as encoded-words.
    private static func phrase(_ name: String) -> [String] {
        let words = name.split(separator: " ", omittingEmptySubsequences: false)
        let isAtomText = words.allSatisfy { word in !word.isEmpty && word.utf8.allSatisfy(MailAddress.isAtext) }
        if isAtomText, isPlain(name) {
            return words.map(String.init)
        }
        if isPlain(name), name.utf8.count <= 60 {
            var quoted = "\""
            for character in name {
                if character == "\"" || character == "\\" { quoted.append("\\") }
                quoted.append(character)
            }
            return [quoted + "\""]
        }
        return encodedWords(name)
    }

    /// RFC 2047 `=?utf-8?B?…?=` words of at most 64 characters (39 bytes of text each), split
    /// between Unicode scalars so that each word is valid UTF-8 on its own. A reader drops the
    /// folding white space between adjacent encoded-words, so the text comes back exactly.
    static func encodedWords(_ text: String) -> [String] {
        let maxBytes = 39
        var words: [String] = []
        var chunk: [UInt8] = []
        for scalar in text.unicodeScalars {
            let bytes = Array(String(scalar).utf8)
            if chunk.count + bytes.count > maxBytes {
                words.append("=?utf-8?B?\(base64(chunk))?=")
                chunk.removeAll(keepingCapacity: true)
            }
            chunk += bytes
        }
        if !chunk.isEmpty || words.isEmpty {
            words.append("=?utf-8?B?\(base64(chunk))?=")
        }
        return words
    }

    /// `Name:` then the words separated by single spaces, a line break (CRLF and the space)
    /// put before a word whenever the line would pass 78 characters.
    private static func folded(_ name: String, _ words: [String]) -> String {
        var field = ""
        var line = name + ":"
        var lineHasWord = false
        for word in words {
            if lineHasWord, line.utf8.count + 1 + word.utf8.count > 78 {
                field += line + "\r\n"
                line = ""
            }
            line += " " + word
            lineHasWord = true
        }
        return field + line + "\r\n"
    }

    private static let base64Alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func base64(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let b0 = bytes[index]
            let b1 = index + 1 < bytes.count ? bytes[index + 1] : 0
            let b2 = index + 2 < bytes.count ? bytes[index + 2] : 0
            out.append(base64Alphabet[Int(b0 >> 2)])
            out.append(base64Alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
            out.append(index + 1 < bytes.count ? base64Alphabet[Int((b1 & 0x0F) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            out.append(index + 2 < bytes.count ? base64Alphabet[Int(b2 & 0x3F)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
