import ArgumentParser
import Curl
import Foundation
import Logging
import PushlogCore
import PushlogRuntime

/// The daemon, so far without its HTTP API and configuration file (the daemon issue): it holds
/// the data directory, runs the boot check and the pusher pool, and delivers what `pushlog
/// append` adds to the log (noticed within 50 ms). SIGINT/SIGTERM stop it cleanly.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon: the pusher pool, delivering what is appended to the log.",
        discussion: "The HTTP API and --config are not built yet: append with `pushlog append`; push settings are the contract's defaults.")
    @OptionGroup var dataDir: DataDirOption
    @Option(help: "YAML configuration file (not read yet).") var config: String?
    @Option(help: "HOST:PORT to listen on (no HTTP API yet).") var listen: String = "127.0.0.1:8690"

    func run() async throws {
        do {
            try await serve()
        } catch let e as DataDirLock.Busy {
            fail(Exit.busy, "\(e)")
        } catch {
            fail(Exit.internalError, "\(error)")
        }
    }

    func serve() async throws {
        let lock = try DataDirLock.exclusive(dataDir: dataDir.dataDir)
        defer { withExtendedLifetime(lock) {} }
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .info
            return h
        }
        let logger = Logger(label: "pushlog")
        let store = try dataDir.openStore()
        let http = try HTTPClient()
        let processes = BackgroundProcesses(logger: logger)
        let pool = PusherPool(store: store, http: http, processes: processes, config: PushConfig(), logger: logger)

        // Signals are handled before anything says it is running.
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let (stop, signalled) = AsyncStream<Int32>.makeStream()
        let sources = [SIGINT, SIGTERM].map { sig in
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { signalled.yield(sig) }
            s.resume()
            return s
        }
        defer { sources.forEach { $0.cancel() } }
        let follower = try LogFollower.start(store: store, pool: pool, processes: processes)
        await pool.start().value
        logger.info("pushlog serve: delivering from \(dataDir.dataDir) (no HTTP API yet)")
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
