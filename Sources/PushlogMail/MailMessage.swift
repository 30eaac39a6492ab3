/// One notification email as RFC 5322 bytes: a `multipart/alternative` message with the
/// plain-text part first and the HTML part second (readers show the last part they can), both
/// UTF-8 and quoted-printable, with the headers Synapse sends (reference §4.5 item 16).
///
/// Every check happens in `init`, so a `MailMessage` that exists can always be written:
/// ``bytes()`` does not throw. Header injection is impossible by construction: addresses and
/// the unsubscribe URL are refused when unsafe, and free text (subject, display names) has its
/// control characters turned into spaces and non-ASCII encoded (see ``HeaderField``).
public struct MailMessage: Sendable {
    public let from: MailAddress
    public let to: MailAddress
    public let subject: String
    public let text: String
    public let html: String
    /// The one-click unsubscribe link, for `List-Unsubscribe` (RFC 2369, RFC 8058).
    public let unsubscribeURL: String
    /// When the message was written, in milliseconds since the Unix epoch (`Date:`).
    public let dateMS: Int64
    /// The `Message-ID` without its angle brackets: `random@domain-of-from`.
    public let messageID: String
    /// The multipart boundary: random, and starting with `=_`, which quoted-printable text
    /// never contains.
    public let boundary: String

    /// - Parameters:
    ///   - text: the plain-text part; its line breaks (LF or CRLF) are sent as CRLF.
    ///   - html: the HTML part, likewise.
    ///   - dateMS: defaults to now.
    ///   - messageID: defaults to a random one at the From address's domain.
    /// - Throws: ``MailError/invalidHeader(field:reason:)`` with field `list-unsubscribe` when
    ///   the URL is not an absolute `http(s)` or `mailto` URL of printable ASCII without `<`,
    ///   `>` or `,` (which would end or split the header's `<…>`), or longer than 900 bytes.
    public init(
        from: MailAddress,
        to: MailAddress,
        subject: String,
        text: String,
        html: String,
        unsubscribeURL: String,
        dateMS: Int64? = nil,
        messageID: String? = nil
    ) throws(MailError) {
        try Self.validateUnsubscribeURL(unsubscribeURL)
        self.from = from
        self.to = to
        self.subject = subject
        self.text = text
        self.html = html
        self.unsubscribeURL = unsubscribeURL
        self.dateMS = dateMS ?? MailDate.nowMS()
        self.messageID = messageID ?? "\(Self.randomHex(16))@\(from.domain)"
        boundary = "=_pushlog_\(Self.randomHex(12))"
        guard MailAddress.isAddrSpec(self.messageID) else {
            throw MailError.invalidHeader(field: "message-id", reason: "not of the form id@domain: \(String(reflecting: self.messageID))")
        }
    }

    /// The complete message, CRLF line breaks, every line at most 78 characters except where
    /// an address or the unsubscribe URL is longer.
    public func bytes() -> [UInt8] {
        var header = ""
        header += HeaderField.address("From", from)
        header += HeaderField.address("To", to)
        header += HeaderField.unstructured("Subject", subject)
        header += HeaderField.raw("Date", MailDate.format(ms: dateMS))
        header += HeaderField.raw("Message-ID", "<\(messageID)>")
        header += HeaderField.raw("MIME-Version", "1.0")
        header += HeaderField.raw("Content-Type", "multipart/alternative;\r\n boundary=\"\(boundary)\"")
        // Keeps out-of-office replies and other auto-responders away (RFC 3834; Exchange).
        header += HeaderField.raw("Auto-Submitted", "auto-generated")
        header += HeaderField.raw("X-Auto-Response-Suppress", "All")
        header += HeaderField.raw("List-Unsubscribe", "<\(unsubscribeURL)>")
        header += HeaderField.raw("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
        header += "\r\n"

        var out = Array(header.utf8)
        for (type, body) in [("text/plain", text), ("text/html", html)] {
            out += Array("--\(boundary)\r\nContent-Type: \(type); charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n".utf8)
            out += QuotedPrintable.encode(body)
            // This CRLF belongs to the boundary line that follows, not to the body.
            out += [0x0D, 0x0A]
        }
        out += Array("--\(boundary)--\r\n".utf8)
        return out
    }

    private static func validateUnsubscribeURL(_ url: String) throws(MailError) {
        let lowered = url.lowercased()
        guard lowered.hasPrefix("https://") || lowered.hasPrefix("http://") || lowered.hasPrefix("mailto:") else {
            throw MailError.invalidHeader(field: "list-unsubscribe", reason: "not an http(s) or mailto URL: \(String(reflecting: url))")
        }
        guard url.utf8.count <= 900, isSafeToken(url),
              !url.utf8.contains(where: { $0 == UInt8(ascii: "<") || $0 == UInt8(ascii: ">") || $0 == UInt8(ascii: ",") }) else {
            throw MailError.invalidHeader(field: "list-unsubscribe", reason: "URL with characters a header cannot carry: \(String(reflecting: url))")
        }
    }

    /// Printable ASCII without spaces.
    private static func isSafeToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    private static func randomHex(_ byteCount: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for _ in 0..<byteCount {
            let byte = UInt8.random(in: 0...255, using: &generator)
            out += [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
