import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `pushlog serve` (the real binary) in the background. It listens on 127.0.0.1 at `port` (0:
/// a free one, which the listening line names and ``port`` then holds); `init` returns once
/// that line is out.
public final class ServeProcess {
    public let process = Process()
    private let errors = Pipe()
    public private(set) var port = 0
    /// What serve wrote to stderr up to its listening line (start-up warnings among it).
    public private(set) var startupLog = ""
    private let laterLog = LockedText()
    /// Everything serve wrote to stderr so far (read after it stopped for all of it).
    public var log: String { startupLog + laterLog.text.withLock { $0 } }

    private final class LockedText: Sendable {
        let text = Mutex("")
    }

    /// How serve ended.
    public enum Ending: Equatable, Sendable {
        case exited(Int32)
        case signalled(Int32)
        /// Still running after the wait (then killed).
        case hung
    }

    public struct Failed: Error { public var stderr: String }

    /// What every test server gets unless `environment` says otherwise: its gateways run on
    /// 127.0.0.1, which `push.ip_range_blacklist` blocks by default (as Synapse's tests do).
    public static let defaultEnvironment = ["PUSHLOG_PUSH_IP_RANGE_WHITELIST": "127.0.0.0/8"]

    public init(dataDir: String, port: Int = 0, environment: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: try pushlogBinary())
        process.arguments = ["serve", "--data-dir", dataDir, "--listen", "127.0.0.1:\(port)"]
        process.environment = ProcessInfo.processInfo.environment.merging(Self.defaultEnvironment) { $1 }.merging(environment) { $1 }
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let marker = "pushlog serve: listening on 127.0.0.1:"
        var text = ""
        while !(text.range(of: marker).map { text[$0.upperBound...].contains(",") } ?? false) {
            let chunk = errors.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw Failed(stderr: text) }
            text += String(decoding: chunk, as: UTF8.self)
        }
        self.port = Int(text[text.range(of: marker)!.upperBound...].prefix { $0.isNumber }) ?? 0
        startupLog = text
        let handle = errors.fileHandleForReading
        let later = laterLog
        Thread.detachNewThread {  // never block serve on a full pipe
            while case let chunk = handle.availableData, !chunk.isEmpty {
                later.text.withLock { $0 += String(decoding: chunk, as: UTF8.self) }
            }
        }
    }

    /// Sends `signal` and returns how serve ended, once Foundation has reaped it (its own
    /// reaping races any waitpid here, and its waitUntilExit can hang inside tests).
    @discardableResult
    public func stop(_ signal: Int32, timeout: Double = 30) -> Ending {
        kill(process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        guard !process.isRunning else {
            kill(process.processIdentifier, SIGKILL)
            return .hung
        }
        return process.terminationReason == .uncaughtSignal ? .signalled(process.terminationStatus) : .exited(process.terminationStatus)
    }
}
