/// Quoted-printable (RFC 2045 §6.7) for the text and HTML parts.
///
/// Why quoted-printable: mostly-ASCII text stays readable in the raw message, any UTF-8 and
/// any line length survive (long lines get soft breaks, so no encoded line passes 76
/// characters, far below SMTP's 998), and the output never contains `=_`, so a boundary
/// starting with `=_` cannot occur inside a part.
enum QuotedPrintable {
    /// Encodes `text` with its line breaks (LF, CRLF or a lone CR) as CRLF line breaks.
    ///
    /// Also encodes the `F` of a line starting with `From ` (`=46rom `), which mbox-style
    /// mailboxes would otherwise mangle into `>From `. Lines starting with `.` are left to
    /// SMTP's dot-stuffing.
    static func encode(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + text.utf8.count / 8)
        for (index, line) in lines(of: Array(text.utf8)).enumerated() {
            if index > 0 { out += [0x0D, 0x0A] }
            encodeLine(line, into: &out)
        }
        return out
    }

    /// The longest encoded line before the `=` of a soft line break.
    private static let maxLine = 75

    private static func encodeLine(_ line: ArraySlice<UInt8>, into out: inout [UInt8]) {
        var lineLength = 0
        var index = line.startIndex
        while index < line.endIndex {
            let byte = line[index]
            let isLast = index == line.endIndex - 1
            let literal: Bool
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"):
                // White space at the end of a line may be stripped in transit: encode it there.
                literal = !isLast
            case UInt8(ascii: "="):
                literal = false
            case UInt8(ascii: "F"):
                literal = lineLength > 0 || !line[index...].starts(with: "From ".utf8)
            case 33...126:
                literal = true
            default:
                literal = false
            }
            let width = literal ? 1 : 3
            if lineLength + width > maxLine {
                out += [UInt8(ascii: "="), 0x0D, 0x0A]
                lineLength = 0
                // The check for "From " above assumed a line already started; redo it.
                continue
            }
            if literal {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "="), hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]]
            }
            lineLength += width
            index += 1
        }
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    /// The lines of `bytes`, split at LF, CRLF or a lone CR; text ending in a line break
    /// ends with an empty line.
    private static func lines(of bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        var result: [ArraySlice<UInt8>] = []
        var start = 0
        var index = 0
        while index < bytes.count {
            switch bytes[index] {
            case 0x0A:
                result.append(bytes[start..<index])
                index += 1
                start = index
            case 0x0D:
                result.append(bytes[start..<index])
                index += index + 1 < bytes.count && bytes[index + 1] == 0x0A ? 2 : 1
                start = index
            default:
                index += 1
            }
        }
        result.append(bytes[start..<bytes.count])
        return result
    }
}
