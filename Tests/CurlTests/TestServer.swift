import Foundation
import Synchronization
import TestSupport

/// A real HTTP server on 127.0.0.1 (`Tests/Support/http_test_server.py`), one per test.
///
/// Tests synchronise on the lines it prints (``waitFor(_:count:)``), never on sleeps.
final class TestServer: Sendable {
    let port: Int
    private let output: ServerOutput
    private let child: Mutex<ChildProcess?>

    private init(port: Int, output: ServerOutput, child: ChildProcess) {
        self.port = port
        self.output = output
        self.child = Mutex(child)
    }

    static func start() async throws -> TestServer {
        let child = try PythonServer.start("http_test_server.py")
        let output = ServerOutput()
        // A plain thread that blocks reading until end of file: Foundation's readabilityHandler
        // (a dispatch source) crashed in libdispatch now and then when many servers came and went.
        let handle = FileHandle(fileDescriptor: child.stdout, closeOnDealloc: true)
        Thread.detachNewThread {
            while true {
                let data = handle.availableData
                guard !data.isEmpty else { return output.end() }
                output.feed(data)
            }
        }

        let lines = await output.wait { !$0.isEmpty }
        guard let first = lines.first, let port = Int(first) else {
            child.kill()
            throw TestServerError.noPort(lines)
        }
        return TestServer(port: port, output: output, child: child)
    }

    func url(_ path: String) -> String {
        "http://127.0.0.1:\(port)\(path)"
    }

    /// Waits until the server has printed `line` at least `count` times.
    func waitFor(_ line: String, count: Int = 1) async {
        _ = await output.wait { lines in lines.count { $0 == line } >= count }
    }

    func stop() {
        child.withLock { $0.take() }?.kill()
    }

    deinit {
        stop()
    }
}

enum TestServerError: Error {
    case noPort([String])
}

/// The server's stdout, split into lines, and the tasks waiting for particular lines.
final class ServerOutput: Sendable {
    private struct Waiter {
        var isSatisfied: @Sendable ([String]) -> Bool
        var continuation: CheckedContinuation<[String], Never>
    }

    private struct State {
        var partial: [UInt8] = []
        var lines: [String] = []
        var ended = false
        var waiters: [Waiter] = []

        /// Removes and returns the waiters that can go on now (all of them once output ended).
        mutating func takeReadyWaiters() -> [Waiter] {
            let ready = waiters.filter { ended || $0.isSatisfied(lines) }
            waiters.removeAll { ended || $0.isSatisfied(lines) }
            return ready
        }
    }

    private let state = Mutex(State())

    func feed(_ data: Data) {
        let (ready, lines) = state.withLock { state in
            for byte in data {
                if byte == UInt8(ascii: "\n") {
                    state.lines.append(String(decoding: state.partial, as: UTF8.self))
                    state.partial.removeAll()
                } else {
                    state.partial.append(byte)
                }
            }
            return (state.takeReadyWaiters(), state.lines)
        }
        for waiter in ready { waiter.continuation.resume(returning: lines) }
    }

    func end() {
        let (ready, lines) = state.withLock { state in
            state.ended = true
            return (state.takeReadyWaiters(), state.lines)
        }
        for waiter in ready { waiter.continuation.resume(returning: lines) }
    }

    /// Returns the lines so far once `isSatisfied` holds for them, or once the output ended
    /// (then the caller's own checks report what is missing).
    func wait(until isSatisfied: @escaping @Sendable ([String]) -> Bool) async -> [String] {
        await withCheckedContinuation { continuation in
            let lines: [String]? = state.withLock { state in
                if state.ended || isSatisfied(state.lines) { return state.lines }
                state.waiters.append(Waiter(isSatisfied: isSatisfied, continuation: continuation))
                return nil
            }
            if let lines { continuation.resume(returning: lines) }
        }
    }
}

