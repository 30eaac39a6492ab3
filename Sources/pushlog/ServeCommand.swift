import ArgumentParser
import Curl
import Foundation
import Logging
import PushlogConfig
import PushlogCore
import PushlogMail
import PushlogRuntime
import Metrics
import Prometheus
import PushlogServer
import PushlogSynapse
import ServiceLifecycle

/// The daemon: it reads the configuration, holds the data directory, serves the HTTP API, runs
/// the boot check and the pusher pool, and also delivers what `pushlog append` adds to the log
/// from another process (noticed within 50 ms). SIGINT/SIGTERM stop it cleanly.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon: the HTTP API and the pusher pool.",
        discussion: "See data/pushlog.example.yaml for the configuration keys. Refuses a non-loopback address without api.token.")
    @OptionGroup var dataDir: DataDirOption
    @Option(help: "YAML configuration file.") var config: String?
    @Option(help: "HOST:PORT to listen on (overrides the config's listen; default 127.0.0.1:8690).") var listen: String?

    func run() async throws {
        do {
            try await serve()
        } catch let e as DataDirLock.Busy {
            fail(Exit.busy, "\(e)")
        } catch let e as Config.Problem {
            fail(Exit.usage, "\(e)")
        } catch let e as FileText.Failure {
            fail(Exit.usage, "\(e)")  // the --config file
        } catch {
            fail(Exit.internalError, errorLine(error))
        }
    }

    func loadConfig() throws -> Config {
        var text: String?
        if let config { text = String(decoding: try FileText.read(config), as: UTF8.self) }
        var c = try Config.load(yaml: text, file: config ?? "config", environment: ProcessInfo.processInfo.environment)
        if let dir = dataDir.explicitDataDir { c.dataDir = dir }
        if let listen { c.listen = try Config.load(yaml: "listen: \"\(listen)\"", file: "--listen").listen }
        try c.validate()
        let host = c.listenHost
        if c.apiToken == nil && !["127.0.0.1", "::1", "localhost", "[::1]"].contains(host) {
            throw Config.Problem(key: "listen", message: "is not a loopback address (\(host)): set api.token first", source: config ?? "--listen")
        }
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
        // Before any metric is created: everything the runtime counts lands in this registry.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        var storeOptions = StoreOptions(durability: config.storeDurability == "nometasync" ? .nometasync : .sync)
        if let size = config.storeMapSize { storeOptions.mapSize = size }
        let store = try Store(dataDir: config.dataDir, options: storeOptions)
        if try store.rebuildInterrupted() {
            fail(Exit.busy, "a repair of the projections in \(config.dataDir) was interrupted (replay --rebuild or recover): run `pushlog recover --data-dir \(config.dataDir)` to finish it before serving")
        }
        let http = try HTTPClient()
        let processes = BackgroundProcesses(logger: logger)
        var signer = try UnsubscribeSigner.load(dataDir: config.dataDir)
        signer.lifetimeMS = config.email.unsubscribeLinkLifetimeMS
        // Unsubscribe links name the address the server listens on unless email.public_baseurl
        // says otherwise; with port 0 that is known once it listens.
        let serverState = ServerState()
        let email = try emailDelivery(config, http: http, signer: signer, logger: logger,
                                      publicBaseURL: { config.email.publicBaseURL ?? "http://\(serverState.address ?? config.listen)/" })
        let pool = PusherPool(store: store, http: http, processes: processes, config: config.push, email: email, logger: logger)

        // Signals are handled before anything says it is running.
        let stop = stopSignals()
        let follower = try LogFollower.start(store: store, pool: pool, processes: processes)
        let synapse = try startSynapseFollower(config, store: store, pool: pool, processes: processes, logger: logger)
        let pusherMetrics = PusherMetrics(store: store)
        let (listening, running) = AsyncStream<Int?>.makeStream()
        let app = makeApplication(
            store: store, pool: pool,
            config: APIConfig(token: config.apiToken, metricsToken: config.metricsToken, maxBodySize: config.apiMaxBodySize,
                              metricsText: { registry.emitToBuffer() + pusherMetrics.render() }, unsubscribeSigner: signer,
                              gatewayAddressPolicy: config.push.addressPolicy),
            host: config.listenHost, port: config.listenPort, logger: logger,
            onRunning: { port in running.yield(port); running.finish() })
        // The pusher pool and the HTTP server are the services of one group; our own signal
        // handling triggers its graceful shutdown, which stops them in reverse order: the server
        // stops accepting and finishes its requests, then the pool lets in-flight pushes finish.
        let group = ServiceGroup(configuration: .init(services: [PoolService(pool: pool), app],
                                                      gracefulShutdownSignals: [], logger: logger))
        let server = Task { try await group.run() }
        let stopped: Task<Void, Never> = Task {
            if case .failure(let error) = await server.result {
                serverState.set(error)
                logger.error("HTTP server stopped: \(error)")
            }
            running.finish()
        }
        var boundPort: Int?
        for await port in listening { boundPort = port }  // once the server listens (or failed to start)
        if let error = serverState.get() {
            throw Config.Problem(key: "listen", message: "cannot be served: \(error)", source: config.listen)
        }
        // With port 0 in the configuration the system picked one: the line names the real one.
        let host = config.listenHost.contains(":") ? "[\(config.listenHost)]" : config.listenHost
        let address = boundPort.map { "\(host):\($0)" } ?? config.listen
        serverState.address = address
        logger.info("pushlog serve: listening on \(address), data in \(config.dataDir)")
        for await sig in stop {
            logger.info("pushlog serve: signal \(sig), stopping")
            break
        }
        await group.triggerGracefulShutdown()
        await stopped.value
        follower.cancel()
        await follower.value
        synapse?.cancel()
        await synapse?.value
        http.shutdown()
        store.close()
        logger.info("pushlog serve: stopped")
    }
}

extension Serve {
    /// With `source.synapse.database` set: the Synapse follower, a background process named
    /// `synapse_follower`. It pokes the pool with what it appends, as the HTTP API does. A
    /// database that is down at start or later is retried with backoff; delivery goes on.
    func startSynapseFollower(_ config: Config, store: Store, pool: PusherPool, processes: BackgroundProcesses,
                              logger: Logger) throws -> Task<Void, Never>? {
        guard let database = config.synapse.database else { return nil }
        let url: SynapseDatabaseURL
        do { url = try SynapseDatabaseURL(parsing: database) } catch {
            throw Config.Problem(key: "source.synapse.database", message: "\(error)", source: "config")
        }
        let password = try config.synapse.password()
        var options = SynapseFollowerOptions()
        options.shard = Shard(index: config.synapse.shardIndex, count: config.synapse.shardCount)
        options.pollInterval = .milliseconds(config.synapse.pollIntervalMS)
        options.lateness = .milliseconds(config.synapse.latenessMS)
        options.backfill = .milliseconds(config.synapse.backfillMS)
        let followerOptions = options
        logger.info("pushlog serve: following Synapse at \(url), shard \(options.shard)")
        return processes.run("synapse_follower") { ctx in
            var backoff = 0.5
            var said = false
            while !Task.isCancelled {
                let source: any SynapseSource
                do {
                    source = try await SynapseSources.open(url, password: password)
                } catch {
                    if !said { ctx.logger.error("Synapse follower: cannot open \(url) (\(error)); retrying with backoff") }
                    said = true
                    try? await Task.sleep(for: .milliseconds(Int(backoff * 1000)))
                    backoff = min(backoff * 2, 30)
                    continue
                }
                let follower = SynapseFollower(store: store, source: source, options: followerOptions, logger: ctx.logger) { result in
                    if !result.pusherChanges.isEmpty { pool.onPushersChanged(result.pusherChanges) }
                    if !result.notifiedUsers.isEmpty { pool.onNewNotifications(users: result.notifiedUsers) }
                    if !result.receiptUsers.isEmpty { pool.onNewReceipts(users: result.receiptUsers) }
                }
                await follower.run()
                await source.close()
            }
        }
    }

    /// Email over SMTP when `email.smtp_url` is set (the templates loaded and the mailer's
    /// settings checked now, so a bad one stops start-up naming its key); nil with one warning
    /// when it is not.
    func emailDelivery(_ config: Config, http: HTTPClient, signer: UnsubscribeSigner, logger: Logger,
                       publicBaseURL: @escaping @Sendable () -> String) throws -> EmailDelivery? {
        guard config.email.smtpURL != nil else {
            logger.warning("email.smtp_url is not set: email pushers are inert")
            return nil
        }
        if !config.email.tlsVerify {
            logger.warning("email.tls_verify is false: the SMTP server's certificate and host name are NOT checked; anyone on the path to it can read the mails and the SMTP password")
        }
        do {
            let templates = try EmailTemplates.load(directory: config.email.templateDir, logger: logger)
            return try EmailDelivery.smtp(config: config.email, client: http, templates: templates, signer: signer,
                                          publicBaseURL: publicBaseURL)
        } catch let e as MailError {
            if case .invalidConfig(let key, let reason) = e { throw Config.Problem(key: key, message: reason, source: "config") }
            throw Config.Problem(key: "email", message: "\(e)", source: "config")
        } catch let e as EmailTemplateError {
            throw Config.Problem(key: "email.template_dir", message: "\(e)", source: "config")
        }
    }
}

/// The pusher pool as a service: the boot check and loops while the group runs, a graceful stop
/// when it shuts down.
struct PoolService: Service {
    let pool: PusherPool

    func run() async throws {
        await pool.start().value
        try? await gracefulShutdown()
        await pool.shutdown()
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

/// What the HTTP server tells the rest of `serve`: its failure, if it had one, and the address
/// it listens on, once it does.
final class ServerState: @unchecked Sendable {
    private let lock = NSLock()
    private var error: Error?
    private var bound: String?
    func set(_ e: Error) { lock.lock(); error = e; lock.unlock() }
    func get() -> Error? { lock.lock(); defer { lock.unlock() }; return error }
    /// HOST:PORT the server listens on, once it does.
    var address: String? {
        get { lock.lock(); defer { lock.unlock() }; return bound }
        set { lock.lock(); bound = newValue; lock.unlock() }
    }
}
