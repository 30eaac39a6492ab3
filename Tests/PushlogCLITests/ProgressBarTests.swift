import Synchronization
import Testing
@testable import pushlog

@Suite("Progress bar")
struct ProgressBarTests {
    @Test("the bar shows the share done, the counts, the rate and the time left")
    func rendering() {
        #expect(ProgressBar.render(label: "append", done: 500_000, total: 1_000_000, elapsed: 5)
            == "append  [##########..........]  50%  500,000/1,000,000  100,000/s  ETA 0:05")
        #expect(ProgressBar.render(label: "rebuild", done: 1_000, total: 1_000, elapsed: 2)
            == "rebuild  [####################]  100%  1,000/1,000  500/s")
        // A count that starts past 0 (a compacted log from pos 9,001) is rated from where it started.
        #expect(ProgressBar.render(label: "check log", done: 10_000, total: 100_000, baseline: 9_000, elapsed: 1)
            == "check log  [##..................]  10%  10,000/100,000  1,000/s  ETA 1:30")
        #expect(ProgressBar.render(label: "x", done: 0, total: 0, elapsed: 0) == "x  [####################]  100%  0/0")
        #expect(ProgressBar.clock(3_725) == "1:02:05")
        #expect(ProgressBar.grouped(999) == "999" && ProgressBar.grouped(1_234_567) == "1,234,567")
    }

    @Test("nothing is drawn when disabled or with --json; a terminal gets the bar and one newline at the end")
    func drawing() {
        let lines = Lines()
        for bar in [ProgressBar("a", enabled: false, delay: 0, output: lines.add),
                    ProgressBar("a", json: true, enabled: true, delay: 0, output: lines.add)] {
            bar.update(1, of: 2)
            bar.finish()
        }
        #expect(lines.all.isEmpty)

        let bar = ProgressBar("a", enabled: true, delay: 0, output: lines.add)
        bar.update(1, of: 2)
        bar.finish()
        #expect(lines.all.count == 2)
        #expect(lines.all.first?.hasPrefix("\r" + "a  [##########..........]  50%  1/2") == true)
        #expect(lines.all.last?.hasSuffix("\n") == true)
    }

    @Test("a command that ends before the delay shows nothing")
    func quickCommandSilent() {
        let lines = Lines()
        let bar = ProgressBar("a", enabled: true, delay: 60, output: lines.add)
        bar.update(1, of: 2)
        bar.update(2, of: 2)
        bar.finish()
        #expect(lines.all.isEmpty)
    }
}

/// What a bar wrote, in order.
final class Lines: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    var add: @Sendable (String) -> Void { { [self] line in lines.withLock { $0.append(line) } } }
}
