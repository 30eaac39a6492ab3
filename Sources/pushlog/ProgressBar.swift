import Foundation
import Synchronization

/// A progress bar on stderr for a long operator command (append, rebuild, recover, compact, …):
///
///     append  [##########..........]  50%  500,000/1,000,000  81,234/s  ETA 0:06
///
/// It draws only when stderr is a terminal and the command's output is not `--json`, so a pipe,
/// a log file or a JSON reader never sees it. It waits `delay` before its first draw (a command
/// that finishes sooner shows nothing) and redraws at most ten times a second. Thread-safe:
/// `update` may come from a thread that watches the work (the compact copy).
///
///     let bar = ProgressBar("append", json: json)
///     for … { …; bar.update(done, of: total) }
///     bar.finish()
final class ProgressBar: Sendable {
    /// Whether anything is drawn at all.
    let isEnabled: Bool
    private let label: String
    private let delay: Double
    private let output: @Sendable (String) -> Void
    private let state = Mutex(State())

    private struct State {
        var started: Double?
        /// The first `done` seen: a count that starts past 0 (a log from pos 5,000) rates from there.
        var baseline: UInt64 = 0
        var lastDraw = 0.0
        var drawn = false
        var last: (done: UInt64, total: UInt64) = (0, 0)
    }

    /// - Parameters:
    ///   - json: the command prints JSON: no bar, whatever stderr is.
    ///   - enabled: defaults to whether stderr is a terminal.
    init(_ label: String, json: Bool = false, enabled: Bool? = nil, delay: Double = 0.3,
         output: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.label = label
        self.isEnabled = !json && (enabled ?? (isatty(2) != 0))
        self.delay = delay
        self.output = output
    }

    /// `done` of `total` units are finished.
    func update(_ done: UInt64, of total: UInt64) {
        guard isEnabled else { return }
        let now = Date().timeIntervalSinceReferenceDate
        let line: String? = state.withLock { s in
            if s.started == nil { s.started = now; s.baseline = done }
            s.last = (done, total)
            let elapsed = now - s.started!
            guard elapsed >= delay, now - s.lastDraw >= 0.1 else { return nil }
            s.lastDraw = now
            s.drawn = true
            return Self.render(label: label, done: done, total: total, baseline: s.baseline, elapsed: elapsed)
        }
        if let line { output("\r" + line + "\u{1B}[K") }
    }

    /// Ends the bar: its final state and a newline when it was drawn; nothing otherwise.
    func finish() {
        guard isEnabled else { return }
        let now = Date().timeIntervalSinceReferenceDate
        let line: String? = state.withLock { s in
            guard s.drawn, let started = s.started else { return nil }
            s.drawn = false
            return Self.render(label: label, done: s.last.done, total: s.last.total, baseline: s.baseline,
                               elapsed: now - started)
        }
        if let line { output("\r" + line + "\u{1B}[K\n") }
    }

    /// Runs `body`, which writes the file at `path` in one long call, while a thread draws the
    /// file's size against `total` bytes; ends the bar full when `body` returns.
    func watching<T>(file path: String, growingTo total: UInt64, _ body: () throws -> T) rethrows -> T {
        guard isEnabled else { return try body() }
        let watch = Watch()
        Thread.detachNewThread { [self] in
            var info = stat()
            while !watch.isDone.load(ordering: .acquiring) {
                if stat(path, &info) == 0 { update(min(UInt64(info.st_size), total), of: total) }
                usleep(100_000)
            }
            watch.ended.signal()
        }
        defer {
            watch.isDone.store(true, ordering: .releasing)
            watch.ended.wait()  // no draw after the last one below
            update(total, of: total)
            finish()
        }
        return try body()
    }

    private final class Watch: Sendable {
        let isDone = Atomic<Bool>(false)
        let ended = DispatchSemaphore(value: 0)
    }

    /// One line of the bar (no control characters): the label, a 20-cell bar, the percentage,
    /// the counts, the rate since the start and the time left at that rate.
    static func render(label: String, done: UInt64, total: UInt64, baseline: UInt64 = 0, elapsed: Double,
                       width: Int = 20) -> String {
        let fraction = total == 0 ? 1 : min(1, Double(done) / Double(total))
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let rate = elapsed > 0 ? Double(done &- min(baseline, done)) / elapsed : 0
        var line = "\(label)  [\(bar)]  \(Int(fraction * 100))%  \(grouped(done))/\(grouped(total))"
        if rate > 0 {
            line += "  \(grouped(UInt64(rate)))/s"
            if done < total { line += "  ETA \(clock(Double(total - done) / rate))" }
        }
        return line
    }

    /// 1234567 → "1,234,567".
    static func grouped(_ n: UInt64) -> String {
        let digits = Array(String(n))
        var out = ""
        for (i, d) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(d)
        }
        return out
    }

    /// Seconds as m:ss, or h:mm:ss from an hour on.
    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded(.up))
        let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60)
        let mmss = (h > 0 ? String(format: "%02d", m) : "\(m)") + ":" + String(format: "%02d", sec)
        return h > 0 ? "\(h):\(mmss)" : mmss
    }
}
