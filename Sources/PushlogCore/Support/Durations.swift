import Foundation

/// Durations as the config and command line write them: `250ms`, `10s`, `10m`, `24h`, `7d`.
public enum DurationText {
    /// Milliseconds, or nil when `text` is not a duration.
    public static func milliseconds(_ text: String) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, factor) in units where t.hasSuffix(suffix) {
            let number = t.dropLast(suffix.count)
            guard !number.isEmpty, number.allSatisfy(\.isASCII), let v = Int64(number), v >= 0 else { continue }
            let (ms, overflow) = v.multipliedReportingOverflow(by: factor)
            return overflow ? nil : ms
        }
        return t == "0" ? 0 : nil
    }

    /// An instant given as RFC 3339 (`2026-11-29T10:00:00Z`) or as a duration ago (`30m`), in ms.
    public static func instant(_ text: String, now: Int64 = SystemClock.nowMS()) -> Int64? {
        if let ago = milliseconds(text) { return now - ago }
        let f = ISO8601DateFormatter()
        for options: ISO8601DateFormatter.Options in [[.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime]] {
            f.formatOptions = options
            if let d = f.date(from: text) { return Int64((d.timeIntervalSince1970 * 1000).rounded()) }
        }
        return nil
    }
}
