import Curl
import Logging
import Metrics
import PushlogCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Routes: a user's pushers to the HTTP delivery engine (``DeliveryEngine``) or to an email
/// loop. The engine owns its HTTP runs (boot activation, pokes, backoffs, idle waiters, push
/// metrics); the pool owns only the email loops.
///
/// `onNewNotifications`, `onNewReceipts` and `onPushersChanged` return at once: they look up the
/// pushers of the users concerned and poke them, one poke per pusher and append.
public final class PusherPool: @unchecked Sendable {
    let store: Store
    let processes: BackgroundProcesses
    let config: PushConfig
    /// nil: email pushers are inert (no `email.smtp_url`).
    let email: EmailDelivery?
    let logger: Logger
    /// The one HTTP delivery path.
    public let engine: DeliveryEngine
    let lock = Mutex(())
    var emailLoops: [[UInt8]: EmailLoop] = [:]
    /// Email loops not waiting for their next due time (running a pass, or about to).
    let emailLoopsAwake = ActivityCount()
    var stopping = false
    /// Email loops started at boot, `push.startup_concurrency` at a time.
    let bootSlots: AsyncSemaphore

    let bootCheckSeconds = Gauge(label: "pushlog_boot_check_seconds")
    let emailsSent = Counter(label: "pushlog_emails_sent_total")
    let emailsFailed = Counter(label: "pushlog_emails_failed_total")

    /// Called after each delivered HTTP push with its pos and its latency in seconds (benchmarks).
    public var onDelivered: (@Sendable (UInt64, Double) -> Void)? {
        get { engine.onDelivered }
        set { engine.onDelivered = newValue }
    }

    /// An email pusher's loop: one `emailpush.process` per pass, and between passes a wait for
    /// the next due time that a poke cuts short (a new notification may be due sooner).
    final class EmailLoop: @unchecked Sendable {
        var dirty = false
        var bootSlot = false
        var runner: Task<Void, Never>?
        /// Set while waiting for the next due time.
        var waiter: Task<Void, Error>?
        var wakeAt: Int64?
    }

    public init(store: Store, http: CurlClient, processes: BackgroundProcesses, config: PushConfig,
                email: EmailDelivery? = nil, logger: Logger) {
        self.store = store
        self.processes = processes
        self.config = config
        self.email = email
        self.logger = logger
        self.bootSlots = AsyncSemaphore(permits: max(1, config.startupConcurrency))
        self.engine = DeliveryEngine(store: store, http: http, processes: processes, config: config, logger: logger)
    }

    /// HTTP pusher runs now.
    public var runningLoops: Int { engine.activeRuns }

    /// The boot check: one `start_pushers` process finds the pending pushers (merge join of
    /// cursors and heads) and starts them, `push.startup_concurrency` at a time. An HTTP group
    /// goes once the previous one has started, not once it has delivered its backlog (as
    /// Synapse staggers its pushers' start); an email group once the previous one's first pass
    /// is over. It stops early when the pool is shut down.
    @discardableResult
    public func start() -> Task<Void, Never> {
        processes.run("start_pushers") { [self] ctx in
            let t0 = SystemClock.monotonicSeconds()
            // Only the pending ones are held: memory grows with work, not with idle pushers.
            var httpKeys: [[UInt8]] = [], emailKeys: [[UInt8]] = []
            let total = try ctx.transaction {
                try store.read { view in try view.forEachPending { p in
                    if p.kind == .http { httpKeys.append(p.key) } else if email != nil { emailKeys.append(p.key) }
                    return true
                } }
            }
            let checkSeconds = SystemClock.monotonicSeconds() - t0
            bootCheckSeconds.record(checkSeconds)
            ctx.logger.info("started pushers: \(httpKeys.count + emailKeys.count) pending of \(total) in \(Int(checkSeconds * 1000)) ms")
            var started = await engine.start(pending: httpKeys, isStopping: { [self] in isStopping })
            for key in emailKeys {
                if isStopping { break }
                try await bootSlots.acquire()
                if !pokeEmail(key: key, bootSlot: true) { bootSlots.release() }
                started += 1
            }
            let pending = httpKeys.count + emailKeys.count
            if started < pending {
                ctx.logger.info("stopped by shutdown: \(started) of \(pending) pending pushers started; the rest start after a restart")
            }
        }
    }

    public func onNewNotifications(users: some Sequence<String>) {
        for user in users {
            guard let pushers = try? store.read({ view in try view.pushers(ofUser: user) }) else { continue }
            for p in pushers where p.state.enabled {
                if p.config.kind == .http { engine.poke(p.key, .notifications) } else if email != nil { pokeEmail(key: p.key) }
            }
        }
    }

    /// Receipts may have changed the users' badges: each HTTP pusher's badge is marked dirty in
    /// the engine, which sends it once (many receipts, one request) when it changed.
    public func onNewReceipts(users: some Sequence<String>) {
        for user in users {
            guard let pushers = try? store.read({ view in try view.pushers(ofUser: user) }) else { continue }
            for p in pushers where p.config.kind == .http && p.state.enabled {
                engine.poke(p.key, .badge)
            }
        }
    }

    /// A pusher was created, replaced, disabled, rewound or removed: a new one starts at the head
    /// and has nothing to do; a disabled or removed one's run notices at its next step.
    public func onPushersChanged(_ ids: some Sequence<PusherID>) {
        for id in ids {
            guard let p = try? store.read({ view in try view.loadPusher(key: Keys.pusher(id)) }), p.state.enabled else { continue }
            if p.config.kind == .http {
                // A running run must look again (a rewind, a new URL) even when caught up.
                engine.poke(p.key, .notifications)
            } else if email != nil, p.state.cursor < ((try? store.read({ view in try view.head(user: id.userID) })) ?? 0) {
                pokeEmail(key: p.key)
            }
        }
    }

    /// Returns once no HTTP run and no awake email loop is left (every HTTP pusher caught up or
    /// gone; email pushers may still wait for their next due time).
    public func waitUntilIdle() async {
        while true {
            await engine.waitUntilIdle()
            await emailLoopsAwake.waitUntilZero()
            if engine.activeRuns == 0, emailLoopsAwake.value == 0 { return }
        }
    }

    /// True once shutdown began: nothing new is sent.
    var isStopping: Bool { lock.withLock { stopping } }

    /// Stops every run and loop: no new push is sent, and the boot walk starts nothing more;
    /// pushes in flight may finish for up to `grace` (their cursors are committed, so a restart
    /// repeats nothing); runs waiting (a backoff, a host slot) stop at once. After `grace`, what
    /// is left is cancelled (and sent again after a restart: its cursor was not advanced).
    public func shutdown(grace: Duration = .seconds(10)) async {
        let (tasks, waiters): ([Task<Void, Never>], [Task<Void, Error>]) = lock.withLock {
            stopping = true
            return (emailLoops.values.compactMap(\.runner), emailLoops.values.compactMap(\.waiter))
        }
        for w in waiters { w.cancel() }
        let engine = self.engine
        engine.stop()
        // A race of the two, without a task group: a group would wait for its slower child
        // (runs that are not cancellable) on the way out, and so outlast the grace.
        let finished: Bool = await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
            let race = FirstAnswer(c)
            Task {
                for t in tasks { await t.value }
                await engine.waitUntilIdle()
                race.resume(true)
            }
            Task {
                try? await Task.sleep(for: grace)
                race.resume(false)
            }
        }
        if !finished {
            logger.warning("pushes still in flight after \(grace): cancelling them (they will be sent again)")
            for t in tasks { t.cancel() }
            engine.cancelInFlight()
            for t in tasks { await t.value }
            await engine.waitUntilIdle()
        }
    }
}

/// A continuation resumed by the first of several racers; the others are ignored.
final class FirstAnswer<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, Never>?>

    init(_ c: CheckedContinuation<T, Never>) { continuation = Mutex(c) }

    func resume(_ value: T) { continuation.withLock { $0.take() }?.resume(returning: value) }
}
