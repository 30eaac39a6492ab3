import Logging
import Synchronization

/// Collects what is logged through ``logger`` in memory, so tests can assert on the lines.
public final class LogCapture: Sendable {
    public struct Line: Sendable {
        public var level: Logger.Level
        public var message: String
        public var metadata: Logger.Metadata
    }

    private let captured = Mutex<[Line]>([])

    public init() {}

    /// Every line so far, oldest first.
    public var lines: [Line] { captured.withLock { $0 } }

    /// A logger (every level, trace included) whose lines land here.
    public var logger: Logger {
        Logger(label: "test") { _ in Handler(capture: self) }
    }

    private struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let line = Line(level: event.level, message: event.message.description,
                            metadata: metadata.merging(event.metadata ?? [:]) { $1 })
            capture.captured.withLock { $0.append(line) }
        }
    }
}
