/// Times and durations as a digest writes them: always UTC and always with the date
/// (`2026-11-29 14:05 UTC`), since an email is often read on another day than it was sent.
enum MailTime {
    /// `yyyy-MM-dd HH:mm UTC` for a time in milliseconds since the epoch.
    static func format(_ ms: Int64) -> String {
        let minutes = floorDiv(ms, 60_000)
        let days = floorDiv(minutes, 1440)
        let minuteOfDay = minutes - days * 1440
        let (year, month, day) = civil(fromDays: days)
        return "\(year)-\(pad(month))-\(pad(day)) \(pad(minuteOfDay / 60)):\(pad(minuteOfDay % 60)) UTC"
    }

    /// A duration in words, its two largest units: "10 minutes", "1 hour 30 minutes", "24 hours".
    static func duration(_ ms: Int64) -> String {
        let seconds = max(0, ms / 1000)
        let units: [(Int64, String)] = [(seconds / 3600, "hour"), (seconds / 60 % 60, "minute"), (seconds % 60, "second")]
        let words = units.filter { $0.0 > 0 }.prefix(2).map { "\($0.0) \($0.1)\($0.0 == 1 ? "" : "s")" }
        return words.isEmpty ? "0 seconds" : words.joined(separator: " ")
    }

    private static func pad(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
    private static func civil(fromDays z: Int64) -> (Int64, Int64, Int64) {
        let z = z + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
