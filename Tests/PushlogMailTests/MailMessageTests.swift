@testable import PushlogMail
import Testing

/// The bytes of a notification email, checked without a server: structure, encoding, and
/// that no input can add a header or a recipient.
@Suite("MailMessage: RFC 5322 bytes")
struct MailMessageTests {
    private let from = try! MailAddress(parsing: "Matrix <noreply@example.org>", field: "from")
    private let to = try! MailAddress(address: "alice@example.org", field: "to")

    private func message(subject: String = "Hi", text: String = "text", html: String = "<p>html</p>",
                         from: MailAddress? = nil) throws -> MailMessage {
        try MailMessage(from: from ?? self.from, to: to, subject: subject, text: text, html: html,
                        unsubscribeURL: "https://push.example.org/v1/unsubscribe?u=%40alice&sig=abc", dateMS: 1_732_900_000_000)
    }

    /// The header block, unfolded, as (name, value) pairs.
    private func headers(_ bytes: [UInt8]) -> [(String, String)] {
        let text = String(decoding: bytes, as: UTF8.self)
        let head = text.components(separatedBy: "\r\n\r\n")[0].replacingOccurrences(of: "\r\n ", with: " ")
        return head.components(separatedBy: "\r\n").map { line in
            let colon = line.firstIndex(of: ":")!
            return (String(line[..<colon]), String(line[line.index(after: colon)...].dropFirst()))
        }
    }

    @Test("the header carries From, To, Subject, Date, Message-ID, MIME and the auto-submitted and unsubscribe headers, once each")
    func headerFields() throws {
        let fields = headers(try message().bytes())
        let names = fields.map(\.0)
        #expect(names == ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "Auto-Submitted",
                          "X-Auto-Response-Suppress", "List-Unsubscribe", "List-Unsubscribe-Post"])
        let value = { (name: String) in fields.first { $0.0 == name }?.1 }
        #expect(value("From") == "Matrix <noreply@example.org>")
        #expect(value("To") == "alice@example.org")
        #expect(value("Date") == "Fri, 29 Nov 2024 17:06:40 +0000")
        #expect(value("MIME-Version") == "1.0")
        #expect(value("Auto-Submitted") == "auto-generated")
        #expect(value("X-Auto-Response-Suppress") == "All")
        #expect(value("List-Unsubscribe") == "<https://push.example.org/v1/unsubscribe?u=%40alice&sig=abc>")
        #expect(value("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click")
        let messageID = try #require(value("Message-ID"))
        #expect(messageID.hasPrefix("<") && messageID.hasSuffix("@example.org>"))
        #expect(value("Content-Type")?.hasPrefix("multipart/alternative; boundary=\"=_") == true)
    }

    @Test("every line ends in CRLF and none is longer than 78 characters, even for long UTF-8 text")
    func lineDiscipline() throws {
        let long = String(repeating: "Grüße aus Köln, ", count: 40)
        let bytes = try message(subject: long, text: long + "\n" + long, html: long,
                                from: MailAddress(address: "noreply@example.org", displayName: long, field: "from")).bytes()
        var lines: [[UInt8]] = [[]]
        for (index, byte) in bytes.enumerated() {
            if byte == 0x0A {
                #expect(index > 0 && bytes[index - 1] == 0x0D, "bare LF at \(index)")
                lines.append([])
            } else {
                lines[lines.count - 1].append(byte)
            }
        }
        #expect(bytes.indices.allSatisfy { bytes[$0] != 0x0D || ($0 + 1 < bytes.count && bytes[$0 + 1] == 0x0A) }, "bare CR")
        let longest = lines.map { $0.count - ($0.last == 0x0D ? 1 : 0) }.max() ?? 0
        #expect(longest <= 78)
        #expect(bytes.allSatisfy { $0 < 0x80 }, "8-bit bytes in a message that declares none")
    }

    @Test("the text part comes first, then the HTML part, both UTF-8 quoted-printable")
    func partOrder() throws {
        let text = String(decoding: try message(text: "plain one", html: "<b>rich one</b>").bytes(), as: UTF8.self)
        let plain = try #require(text.range(of: "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nplain one"))
        let html = try #require(text.range(of: "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<b>rich one</b>"))
        #expect(plain.lowerBound < html.lowerBound)
        #expect(text.hasSuffix("--\r\n"))
    }

    @Test("quoted-printable: '=' and non-ASCII are escaped, trailing spaces kept, long lines softly broken, 'From ' at a line start escaped")
    func quotedPrintable() {
        #expect(String(decoding: QuotedPrintable.encode("a=b é"), as: UTF8.self) == "a=3Db =C3=A9")
        #expect(String(decoding: QuotedPrintable.encode("end \nnext"), as: UTF8.self) == "end=20\r\nnext")
        #expect(String(decoding: QuotedPrintable.encode("From here\r\nnot From"), as: UTF8.self) == "=46rom here\r\nnot From")
        #expect(String(decoding: QuotedPrintable.encode("a\rb"), as: UTF8.self) == "a\r\nb")
        let encoded = String(decoding: QuotedPrintable.encode(String(repeating: "x", count: 200)), as: UTF8.self)
        let lines = encoded.components(separatedBy: "\r\n")
        #expect(lines.allSatisfy { $0.count <= 76 })
        #expect(lines.dropLast().allSatisfy { $0.hasSuffix("=") })
        #expect(lines.joined().replacingOccurrences(of: "=", with: "") == String(repeating: "x", count: 200))
    }

    @Test("a non-ASCII subject becomes UTF-8 encoded-words; a plain one stays readable")
    func subjectEncoding() throws {
        let fields = headers(try message(subject: "Nachricht von Jörg").bytes())
        let subject = try #require(fields.first { $0.0 == "Subject" }?.1)
        #expect(subject.hasPrefix("=?utf-8?B?"))
        #expect(!subject.contains("ö"))
        let plain = headers(try message(subject: "1 unread message from Bob").bytes())
        #expect(plain.first { $0.0 == "Subject" }?.1 == "1 unread message from Bob")
        // Text that looks like an encoded-word is encoded, so that it is not decoded as one.
        let tricky = headers(try message(subject: "=?utf-8?B?SGk=?=").bytes())
        #expect(tricky.first { $0.0 == "Subject" }?.1 != "=?utf-8?B?SGk=?=")
    }

    @Test("CR, LF and other controls in the subject or a display name become spaces: no header is added")
    func injectionInFreeText() throws {
        let evilFrom = try MailAddress(address: "noreply@example.org", displayName: "Bob\r\nBcc: evil@example.org", field: "from")
        let bytes = try message(subject: "Hi\r\nBcc: evil@example.org\u{0}\u{7F}\n", from: evilFrom).bytes()
        let fields = headers(bytes)
        #expect(!fields.contains { $0.0.lowercased() == "bcc" })
        #expect(fields.first { $0.0 == "Subject" }?.1 == "Hi  Bcc: evil@example.org   ")
        #expect(fields.first { $0.0 == "From" }?.1 == "\"Bob  Bcc: evil@example.org\" <noreply@example.org>")
    }

    @Test("a To that is not a plain local@domain is refused naming the field", arguments: [
        "alice@example.org\r\nBcc: evil@example.org", "alice@example.org, evil@example.org", "Alice <alice@example.org>",
        "alice@example.org\n", "alice", "@example.org", "alice@", "al ice@example.org", "alice@exa_mple.org",
        "alice..x@example.org", "alice@example..org", "\"alice\"@example.org", "alice@example.org\u{0}",
    ])
    func badTo(address: String) {
        #expect(throws: MailError.invalidHeader(field: "to", reason: "not a plain local@domain address: \(String(reflecting: address))")) {
            _ = try MailAddress(address: address, field: "to")
        }
    }

    @Test("an unsubscribe URL that could end or split the header is refused naming the field", arguments: [
        "https://x.example/u\r\nBcc: evil@example.org", "https://x.example/u>, <mailto:evil@example.org", "https://x.example/a b",
        "javascript:alert(1)", "",
    ])
    func badUnsubscribeURL(url: String) {
        #expect {
            _ = try MailMessage(from: from, to: to, subject: "s", text: "t", html: "h", unsubscribeURL: url)
        } throws: { error in
            guard case MailError.invalidHeader(field: "list-unsubscribe", _) = error else { return false }
            return true
        }
    }

    @Test("addresses parse from 'Name <addr>', '\"Quoted, Name\" <addr>' and a bare addr")
    func addressParsing() throws {
        let named = try MailAddress(parsing: "  Pushlog Bot <bot@example.org> ", field: "from")
        #expect(named.displayName == "Pushlog Bot" && named.address == "bot@example.org")
        let quoted = try MailAddress(parsing: #""Matrix, \"the\" app" <noreply@example.org>"#, field: "from")
        #expect(quoted.displayName == #"Matrix, "the" app"#)
        let bare = try MailAddress(parsing: "noreply@localhost", field: "from")
        #expect(bare.displayName == nil && bare.domain == "localhost")
        #expect(throws: MailError.self) { try MailAddress(parsing: "Bob <bob@example.org", field: "from") }
        #expect(throws: MailError.self) { try MailAddress(parsing: "Bob <<bob@example.org>", field: "from") }
    }

    @Test("dates are RFC 5322, in UTC, across leap days and before 1970")
    func dates() {
        #expect(MailDate.format(ms: 0) == "Thu, 01 Jan 1970 00:00:00 +0000")
        #expect(MailDate.format(ms: 951_782_400_000) == "Tue, 29 Feb 2000 00:00:00 +0000")
        #expect(MailDate.format(ms: -1000) == "Wed, 31 Dec 1969 23:59:59 +0000")
        #expect(MailDate.format(ms: 4_102_444_799_999) == "Thu, 31 Dec 2099 23:59:59 +0000")
    }

    @Test("two messages get different Message-IDs and boundaries")
    func uniqueness() throws {
        let a = try message(), b = try message()
        #expect(a.messageID != b.messageID)
        #expect(a.boundary != b.boundary)
    }
}
