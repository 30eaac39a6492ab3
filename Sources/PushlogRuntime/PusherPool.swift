import Curl
import Logging
import Metrics
import PushlogCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Starts and pokes the pusher loops. At most one loop per pusher; a loop runs while its pusher
/// has work and then ends, so an idle pusher costs nothing but its rows in LMDB.
///
/// `onNewNotifications`, `onNewReceipts` and `onPushersChanged` return at once: they look up the
/// pushers of the users concerned and poke them.
public final class PusherPool: @unchecked Sendable {
    let store: Store
    let http: CurlClient
    let processes: BackgroundProcesses
    let config: PushConfig
    /// nil: email pushers are inert (no `email.smtp_url`).
    let email: EmailDelivery?
    let logger: Logger
    let lock = Mutex(())
    private var loops: [[UInt8]: LoopState] = [:]
    var emailLoops: [[UInt8]: EmailLoop] = [:]
    /// Email loops not waiting for their next due time (running a pass, or about to).
    var emailLoopsAwake = 0
    var stopping = false
    private var badgeUpdatesInFlight = 0
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []
    let bootSlots: AsyncSemaphore
    /// Requests in flight per gateway host and libcurl multi handle (so per delivery thread):
    /// more would only queue inside curl, which walks its whole queue on every step.
    private var hostSlots: [String: AsyncSemaphore] = [:]
    static let perHostInFlight = 16

    let pushesProcessed = Counter(label: "pushlog_http_pushes_processed_total")
    let pushesFailed = Counter(label: "pushlog_http_pushes_failed_total")
    let badgesProcessed = Counter(label: "pushlog_badge_updates_processed_total")
    let badgesFailed = Counter(label: "pushlog_badge_updates_failed_total")
    let bootCheckSeconds = Gauge(label: "pushlog_boot_check_seconds")
    /// From the append to the gateway's answer.
    let pushLatency = Timer(label: "pushlog_http_push_latency_seconds")
    /// Called after each delivered push with its pos and its latency in seconds (for benchmarks).
    public var onDelivered: (@Sendable (UInt64, Double) -> Void)?
    let emailsSent = Counter(label: "pushlog_emails_sent_total")
    let emailsFailed = Counter(label: "pushlog_emails_failed_total")

    final class LoopState: @unchecked Sendable {
        /// Set by a poke while the loop runs: look again before ending.
        var dirty = false
        var task: Task<Void, Never>?
        /// Holds a boot slot until its first pass ends.
        var bootSlot = false
        /// Waiting out a backoff: nothing in flight, so shutdown cancels it at once.
        var sleeping = false
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

    /// Drives the HTTP pushers' loops in batches on the curl thread (nil: one task per loop,
    /// ``HTTPPusher/deliverUntilCaughtUp()``, when `PUSHLOG_TASK_DELIVERY` is set; kept to
    /// compare the two in benchmarks).
    private(set) var engine: DeliveryEngines?

    public init(store: Store, http: CurlClient, processes: BackgroundProcesses, config: PushConfig,
                email: EmailDelivery? = nil, logger: Logger) {
        self.store = store
        self.http = http
        self.processes = processes
        self.config = config
        self.email = email
        self.logger = logger
        self.bootSlots = AsyncSemaphore(permits: max(1, config.startupConcurrency))
        if getenv("PUSHLOG_TASK_DELIVERY") == nil { engine = DeliveryEngines(pool: self) }
    }

    /// Number of loops running now.
    public var runningLoops: Int { lock.withLock { loops.count } }

    /// The boot check: one `start_pushers` process finds the pending pushers (merge join of
    /// cursors and heads) and starts their loops, `push.startup_concurrency` at a time.
    @discardableResult
    public func start() -> Task<Void, Never> {
        processes.run("start_pushers") { [self] ctx in
            let t0 = SystemClock.monotonicSeconds()
            // Only the pending ones are held: memory grows with work, not with idle pushers.
            var pending: [PendingPusher] = []
            let total = try ctx.transaction {
                try store.read { view in try view.forEachPending { pending.append($0); return true } }
            }
            let checkSeconds = SystemClock.monotonicSeconds() - t0
            bootCheckSeconds.record(checkSeconds)
            ctx.logger.info("started pushers: \(pending.count) pending of \(total) in \(Int(checkSeconds * 1000)) ms")
            // Start them, staggered: a slot is held until a loop's first pass ends.
            for p in pending where p.kind == .http || email != nil {
                try await bootSlots.acquire()
                let started = p.kind == .http ? poke(key: p.key, bootSlot: true) : pokeEmail(key: p.key, bootSlot: true)
                if !started { bootSlots.release() }
            }
        }
    }

    public func onNewNotifications(users: some Sequence<String>) {
        for user in users {
            guard let pushers = try? store.read({ view in try view.pushers(ofUser: user) }) else { continue }
            for p in pushers where p.state.enabled {
                if p.config.kind == .http { poke(key: p.key) } else if email != nil { pokeEmail(key: p.key) }
            }
        }
    }

    public func onNewReceipts(users: some Sequence<String>) {
        for user in users {
            guard let pushers = try? store.read({ view in try view.pushers(ofUser: user) }) else { continue }
            for p in pushers where p.config.kind == .http && p.state.enabled {
                lock.withLock { badgeUpdatesInFlight += 1 }
                processes.run("http_pusher.on_new_receipts") { [self] ctx in
                    defer { lock.withLock { badgeUpdatesInFlight -= 1 }; resumeIdleWaiters() }
                    try await HTTPPusher(pool: self, key: p.key, context: ctx).updateBadge()
                }
            }
        }
    }

    /// A pusher was created, replaced, disabled or removed: a new one starts at the head and has
    /// nothing to do; a disabled or removed one's loop notices at its next step.
    public func onPushersChanged(_ ids: some Sequence<PusherID>) {
        for id in ids {
            if let p = try? store.read({ view in try view.loadPusher(key: Keys.pusher(id)) }), p.state.enabled,
               p.state.cursor < ((try? store.read { view in try view.head(user: id.userID) }) ?? 0) {
                if p.config.kind == .http { poke(key: p.key) } else if email != nil { pokeEmail(key: p.key) }
            }
        }
    }

    /// Starts the pusher's loop, or marks a running one to look again. Returns false when the
    /// pool is stopping.
    @discardableResult
    func poke(key: [UInt8], bootSlot: Bool = false) -> Bool {
        lock.withLock {
            guard !stopping else { return false }
            if let running = loops[key] {
                running.dirty = true
                if bootSlot { bootSlots.release() }
                return true
            }
            let state = LoopState()
            state.bootSlot = bootSlot
            loops[key] = state
            if let engine {
                engine.activate(key)
                return true
            }
            state.task = processes.run("httppush.process") { [self] ctx in
                var ended = false
                defer { if !ended { loopEnded(key: key) } }  // it threw
                let pusher = HTTPPusher(pool: self, key: key, context: ctx)
                while true {
                    try await pusher.deliverUntilCaughtUp()
                    releaseBootSlot(key: key)
                    // Decided and, when done, unregistered in one lock hold: a poke in between
                    // would otherwise mark a loop that is ending and be lost.
                    if !httpLoopEndsOrGoesAgain(key: key, force: false) {
                        ended = true
                        resumeIdleWaiters()
                        return
                    }
                }
            }
            return true
        }
    }

    func releaseBootSlot(key: [UInt8]) {
        let had: Bool = lock.withLock {
            guard let s = loops[key], s.bootSlot else { return false }
            s.bootSlot = false
            return true
        }
        if had { bootSlots.release() }
    }

    /// An engine activation is over: go round again when poked meanwhile (and not stopping or
    /// `force`d to end), or end the loop. Both under one lock hold, so no poke is lost between.
    func httpLoopEndsOrGoesAgain(key: [UInt8], force: Bool) -> Bool {
        let (again, hadSlot): (Bool, Bool) = lock.withLock {
            if !force, let s = loops[key], s.dirty, !stopping {
                s.dirty = false
                return (true, false)
            }
            let s = loops.removeValue(forKey: key)
            return (false, s?.bootSlot ?? false)
        }
        if hadSlot { bootSlots.release() }
        return again
    }

    private func loopEnded(key: [UInt8]) {
        releaseBootSlot(key: key)
        lock.withLock { _ = loops.removeValue(forKey: key) }
        resumeIdleWaiters()
    }

    func resumeIdleWaiters() {
        let waiters: [CheckedContinuation<Void, Never>] = lock.withLock {
            guard loops.isEmpty && badgeUpdatesInFlight == 0 && emailLoopsAwake == 0 else { return [] }
            defer { idleWaiters.removeAll() }
            return idleWaiters
        }
        for w in waiters { w.resume() }
    }

    /// Returns once no loop, badge update or awake email loop is running (every HTTP pusher caught up
    /// or gone; email pushers may still wait for their next due time).
    public func waitUntilIdle() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let idle: Bool = lock.withLock {
                if loops.isEmpty && badgeUpdatesInFlight == 0 && emailLoopsAwake == 0 { return true }
                idleWaiters.append(c)
                return false
            }
            if idle { c.resume() }
        }
    }

    /// The in-flight limit for the host of `url`.
    func slots(for url: String) -> AsyncSemaphore {
        let host = Self.host(of: url)
        return lock.withLock {
            if let s = hostSlots[host] { return s }
            let s = AsyncSemaphore(permits: Self.perHostInFlight)
            hostSlots[host] = s
            return s
        }
    }

    /// `scheme://host:port` of a URL, cheaply.
    static func host(of url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url }
        let rest = url[schemeEnd.upperBound...]
        let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        return String(url[..<end])
    }

    /// True once shutdown began: loops send nothing new.
    var isStopping: Bool { lock.withLock { stopping } }

    /// Marks a loop as waiting out its backoff (or not), and whether to stop instead.
    func setSleeping(key: [UInt8], _ sleeping: Bool) -> Bool {
        lock.withLock {
            loops[key]?.sleeping = sleeping
            return stopping
        }
    }

    /// Stops every loop: no new push is sent; pushes in flight may finish for up to `grace`
    /// (their cursors are committed, so a restart repeats nothing); loops waiting out a backoff
    /// stop at once. After `grace`, what is left is cancelled (and sent again after a restart).
    public func shutdown(grace: Duration = .seconds(10)) async {
        let (tasks, sleepers): ([Task<Void, Never>], [Task<Void, Never>]) = lock.withLock {
            stopping = true
            return (loops.values.compactMap(\.task) + emailLoops.values.compactMap(\.runner),
                    loops.values.filter(\.sleeping).compactMap(\.task))
        }
        for t in sleepers { t.cancel() }
        let emailWaiters = lock.withLock { emailLoops.values.compactMap(\.waiter) }
        for w in emailWaiters { w.cancel() }
        let engine = self.engine
        engine?.stop()
        let finished = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for t in tasks { await t.value }
                await engine?.waitForActivationsToEnd()
                return true
            }
            group.addTask {
                try? await Task.sleep(for: grace)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if !finished {
            logger.warning("pushes still in flight after \(grace): cancelling them (they will be sent again)")
            for t in tasks { t.cancel() }
            engine?.cancelInFlight()
            for t in tasks { await t.value }
            await engine?.waitForActivationsToEnd()
        }
    }
}
