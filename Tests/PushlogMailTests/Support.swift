import Glibc
import TestSupport

/// A minimal RFC 5322 message with CRLF line breaks.
func plainMessage(subject: String = "test", body: String) -> [UInt8] {
    Array("From: sender@example.org\r\nTo: alice@example.org\r\nSubject: \(subject)\r\n\r\n\(body)".utf8)
}
