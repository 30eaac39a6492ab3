import Foundation
import Logging
import Testing
import TestSupport
@testable import PushlogRuntime

@Suite("Background processes")
struct BackgroundProcessTests {
    @Test("instances are named name-k, counted per name from 0, and the name is on every log line")
    func naming() async throws {
        let logs = LogCapture()
        let p = BackgroundProcesses(logger: logs.logger)
        for _ in 0..<3 {
            await p.run("demo") { ctx in ctx.logger.info("hello") }.value
        }
        await p.run("other") { ctx in ctx.logger.info("hello") }.value
        let names = logs.lines.compactMap { $0.metadata["process"]?.description }
        #expect(names == ["demo-0", "demo-1", "demo-2", "other-0"])
        #expect(p.snapshot()["demo"]?.startCount == 3)
        #expect(p.snapshot()["demo"]?.inFlight == 0)
    }

    @Test("an error thrown inside is logged once at error level with the name, counted, and goes no further")
    func errors() async throws {
        struct Boom: Error {}
        let logs = LogCapture()
        let p = BackgroundProcesses(logger: logs.logger)
        await p.run("boom") { _ in throw Boom() }.value
        let errors = logs.lines.filter { $0.level == .error }
        #expect(errors.count == 1)
        #expect(errors.first?.message.contains("Background process 'boom' threw an exception") == true)
        #expect(errors.first?.metadata["process"] == "boom-0")
        #expect(p.snapshot()["boom"]?.failures == 1)
        // The registry keeps working after it.
        await p.run("boom") { ctx in ctx.logger.info("fine") }.value
        #expect(p.snapshot()["boom"]?.startCount == 2)
    }

    @Test("a process does not inherit the task-locals of whoever started it")
    func freshContext() async throws {
        enum Local { @TaskLocal static var requestID: String? }
        let p = BackgroundProcesses(logger: LogCapture().logger)
        let seen = await Local.$requestID.withValue("req-1") {
            let box = Box()
            await p.run("child") { _ in box.value = Local.requestID ?? "none" }.value
            return box.value
        }
        #expect(seen == "none")
    }

    @Test("user CPU seconds grow for a busy loop and are charged to its name")
    func cpu() async throws {
        let p = BackgroundProcesses(logger: LogCapture().logger)
        // Busy for 0.2 s of this thread's own CPU time (wall time would depend on the machine's load).
        await p.run("busy") { _ in
            var x: UInt64 = 1
            let start = threadCPUSeconds()
            while threadCPUSeconds() - start < 0.2 { for i in 0..<10_000 { x = x &* 6364136223846793005 &+ UInt64(i) } }
            if x == 42 { print(x) }
        }.value
        await p.run("idle") { _ in }.value
        let busy = try #require(p.snapshot()["busy"])
        #expect(busy.userCPUSeconds + busy.systemCPUSeconds > 0.15)
        #expect((p.snapshot()["idle"]?.userCPUSeconds ?? 1) < 0.05)
    }
}

final class Box: @unchecked Sendable {
    var value = ""
}

func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
