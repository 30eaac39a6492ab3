import ArgumentParser
import Curl
import Foundation
import Logging
import PushlogConfig
import PushlogCore
import PushlogRuntime

/// The daemon, so far without its HTTP API (the daemon issue): it reads the configuration,
/// holds the data directory, runs the boot check and the pusher pool, and delivers what
/// `pushlog append` adds to the log (noticed within 50 ms). SIGINT/SIGTERM stop it cleanly.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon: the pusher pool, delivering what is appended to the log.",
        discussion: "The HTTP API is not built yet: append with `pushlog append`. See data/pushlog.example.yaml for the keys.")
    @OptionGroup var dataDir: DataDirOption
    @Option(help: "YAML configuration file.") var config: String?
    @Option(help: "HOST:PORT to listen on (overrides the config's listen; no HTTP API yet).") var listen: String?

    func run() async throws {
        do {
            try await serve()
        } catch let e as DataDirLock.Busy {
            fail(Exit.busy, "\(e)")
        } catch let e as Config.Problem {
            fail(Exit.usage, "\(e)")
        } catch {
            fail(Exit.internalError, "\(error)")
        }
    }

    func loadConfig() throws -> Config {
        var text: String?
        if let config {
            guard let data = FileManager.default.contents(atPath: config) else {
                throw Config.Problem(key: "", message: "cannot be read", source: config)
            }
            text = String(decoding: data, as: UTF8.self)
        }
        var c = try Config.load(yaml: text, file: config ?? "config", environment: ProcessInfo.processInfo.environment)
        if let dir = dataDir.explicitDataDir { c.dataDir = dir }
        if let listen { c.listen = listen }
        try c.validate()
        return c
    }

    func serve() async throws {
        let config = try loadConfig()
        let lock = try DataDirLock.exclusive(dataDir: config.dataDir)
        defer { withExtendedLifetime(lock) {} }
        let level = Logger.Level(rawValue: config.logLevel) ?? .info
        let json = config.logFormat == "json"
        LoggingSystem.bootstrap { label in
            if json { return JSONLogHandler(label: label, level: level) }
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "pushlog")
        var storeOptions = StoreOptions(durability: config.storeDurability == "nometasync" ? .nometasync : .sync)
        if let size = config.storeMapSize { storeOptions.mapSize = size }
        let store = try Store(dataDir: config.dataDir, options: storeOptions)
        let http = try HTTPClient()
        let processes = BackgroundProcesses(logger: logger)
        let pool = PusherPool(store: store, http: http, processes: processes, config: config.push, logger: logger)

        // Signals are handled before anything says it is running.
        let stop = stopSignals()
        let follower = try LogFollower.start(store: store, pool: pool, processes: processes)
        await pool.start().value
        logger.info("pushlog serve: delivering from \(config.dataDir) (no HTTP API yet)")
        for await sig in stop {
            logger.info("pushlog serve: signal \(sig), stopping")
            break
        }
        follower.cancel()
        await follower.value
        await pool.shutdown()
        http.shutdown()
        store.close()
        logger.info("pushlog serve: stopped")
    }
}

/// One JSON object per line on stderr: time, level, message, and the metadata (the background
/// process name among it).
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var o: [String: JSON] = [
            "ts": .string(ISO8601DateFormatter().string(from: Date())), "level": .string(event.level.rawValue),
            "msg": .string(event.message.description), "logger": .string(label),
        ]
        for (k, v) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { o[k] = .string("\(v)") }
        var line = JSON.object(o).serialized()
        line.append(0x0A)
        FileHandle.standardError.write(Data(line))
    }
}
