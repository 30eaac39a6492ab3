import Curl
import DequeModule
import Logging
import Metrics
import PushlogCore
import Synchronization

/// The one HTTP delivery path: every HTTP pusher's run, from its activation (at boot or by a
/// poke) until it is caught up and its writes are committed, on a few curl threads.
///
/// It owns its runs: the boot activation (staggered, ``start(pending:isStopping:)``), the pokes
/// (``poke(_:_:)``), the backoff sleeps, the idle waiters and the push metrics. The pusher pool
/// only routes a user's pushers here. Each pusher always goes to the same ``DeliveryShard`` (by
/// its key), so its requests stay in log order, one at a time.
///
/// Two request kinds: a notification push, and a badge-only push after receipts. A receipt
/// marks the pusher's badge dirty; the run sends the badge alone, when it changed, once it has
/// no notification to send, so many receipts coalesce into one request and a pusher never has
/// two requests in flight.
///
/// What to write and what to do next is decided by ``DeliveryRules``; how many requests go to a
/// gateway host at once, by ``GatewayHosts`` (an adaptive limit per host, shared by the threads).
public final class DeliveryEngine: Sendable {
    let store: Store
    let config: PushConfig
    let processes: BackgroundProcesses
    let logger: Logger
    let counters = DeliveryCounters()
    private let shards: [DeliveryShard]
    let hosts: GatewayHosts
    /// Runs not yet ended, over all shards.
    private let active = ActivityCount()

    /// Called after each delivered push with its pos and its latency in seconds (benchmarks).
    public var onDelivered: (@Sendable (UInt64, Double) -> Void)? {
        get { counters.onDelivered.withLock { $0.call } }
        set { counters.onDelivered.withLock { $0.call = newValue } }
    }

    init(store: Store, http: CurlClient, processes: BackgroundProcesses, config: PushConfig, logger: Logger) {
        self.store = store
        self.config = config
        self.processes = processes
        self.logger = logger
        let n = max(1, config.deliveryThreads)
        let box = ShardBox()
        hosts = GatewayHosts(ceiling: config.maxInFlightPerHost, shards: n) { shard, host, count in
            box.shards[shard].granted(host, count: count)
        }
        var made: [DeliveryShard] = []
        for i in 0..<n { made.append(DeliveryShard(index: i, http: http)) }
        shards = made
        box.shards = made
        for s in made { s.attach(to: self) }
    }

    /// The shards, for the grant callback (set once, before any request).
    private final class ShardBox: @unchecked Sendable {
        var shards: [DeliveryShard] = []
    }

    /// The shard of the pusher at `key`: its last bytes are a hash of its app id and pushkey.
    private func shard(for key: [UInt8]) -> DeliveryShard {
        guard shards.count > 1 else { return shards[0] }
        var h: UInt64 = 14_695_981_039_346_656_037
        for b in key.suffix(8) { h = (h ^ UInt64(b)) &* 1_099_511_628_211 }
        return shards[Int(h % UInt64(shards.count))]
    }

    public enum Poke: Sendable {
        /// New notifications (or a changed pusher): deliver what is after the cursor.
        case notifications
        /// A receipt may have changed the badge.
        case badge
    }

    /// Starts the pusher's run, or tells a running one to look again (or at its badge).
    public func poke(_ key: [UInt8], _ poke: Poke) {
        runsBegan(1)  // until the curl thread has taken the poke (see DeliveryShard.step)
        shard(for: key).poke(key, poke == .badge ? .badge : .notifications)
    }

    /// The boot activation: starts the runs of `pending`, `push.startup_concurrency` at a time,
    /// each group once the previous one has *started* (sent its first request, or found it had
    /// nothing to send, or is waiting for a slot or a backoff), not once it has delivered its
    /// backlog, as Synapse staggers the start of its pushers. Returns early when `isStopping`,
    /// with how many it started.
    @discardableResult
    func start(pending keys: [[UInt8]], isStopping: @Sendable () -> Bool) async -> Int {
        let group = max(1, config.startupConcurrency)
        var i = 0
        while i < keys.count, !isStopping() {
            let chunk = keys[i..<min(keys.count, i + group)]
            i += chunk.count
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let ticket = BootTicket(count: chunk.count, continuation: c)
                runsBegan(chunk.count)
                for key in chunk { shard(for: key).poke(key, .boot(ticket)) }
            }
        }
        return i
    }

    /// No new push is sent; runs waiting (a backoff, a slot) end at once; those with a request
    /// in flight end when it is answered.
    func stop() { for s in shards { s.stop() } }

    /// Aborts the requests in flight (after the shutdown grace): they are sent again after a restart.
    func cancelInFlight() { for s in shards { s.cancelInFlight() } }

    /// Runs now, over all shards.
    public var activeRuns: Int { active.value }

    /// Returns once no run is active (every HTTP pusher caught up, or gone, or stopped).
    public func waitUntilIdle() async { await active.waitUntilZero() }

    func runsBegan(_ n: Int) { active.add(n) }

    func runsEnded(_ n: Int) { active.subtract(n) }
}

/// The push counters, shared by the shards.
final class DeliveryCounters: Sendable {
    let pushesProcessed = Counter(label: "pushlog_http_pushes_processed_total")
    let pushesFailed = Counter(label: "pushlog_http_pushes_failed_total")
    let badgesProcessed = Counter(label: "pushlog_badge_updates_processed_total")
    let badgesFailed = Counter(label: "pushlog_badge_updates_failed_total")
    /// From the append to the gateway's answer.
    let pushLatency = Timer(label: "pushlog_http_push_latency_seconds")
    /// In a struct, not as the Mutex's value itself: `withLock` passes its value `inout` through
    /// a generic, and a bare closure there is re-wrapped in two reabstraction thunks on every
    /// call and stored back, so each call grew the chain and cost more (quadratic: 2 ms a push
    /// after 100,000 pushes).
    let onDelivered = Mutex(DeliveredHook())

    struct DeliveredHook {
        var call: (@Sendable (UInt64, Double) -> Void)?
    }
    let deadLetterMaxAge = Counter(label: "pushlog_dead_letters_total", dimensions: [("reason", DeadLetterReason.maxAge.label)])
    let deadLetterGiveUp = Counter(label: "pushlog_dead_letters_total", dimensions: [("reason", DeadLetterReason.giveUp.label)])
}

/// A group of boot activations: done once each of its runs has started.
final class BootTicket: @unchecked Sendable {
    private let lock = Mutex(0)
    private let continuation: CheckedContinuation<Void, Never>

    init(count: Int, continuation: CheckedContinuation<Void, Never>) {
        lock.withLock { $0 = count }
        self.continuation = continuation
    }

    func started() {
        let last = lock.withLock { n in
            n -= 1
            return n == 0
        }
        if last { continuation.resume() }
    }
}

/// One delivery thread's runs, as state machines driven in batches on its curl thread (a
/// ``PostBatcher`` handler), instead of one task per pusher awaiting one request at a time.
///
/// Each step takes every completion of one turn of the multi handle, reads what the next pushes
/// need in ONE read transaction (the pusher, the next notifications, the entry and the badge),
/// starts the next requests, and queues all the writes of the step as ONE job for the writer's
/// group commit. A run ends once caught up (or stopped) and its writes are committed. Each run
/// is one `httppush.process` (``BackgroundProcesses/begin(_:)``); while any runs, the curl
/// thread's CPU time is charged to that name.
///
/// Threading: ``runs`` and everything in ``Run`` belong to the curl thread (``step(_:)``);
/// other threads talk to it only through ``inbox`` followed by ``PostBatcher/wake()``.
final class DeliveryShard: @unchecked Sendable {
    let index: Int
    private let http: CurlClient
    private weak var engine: DeliveryEngine?
    private var store: Store!
    private var config = PushConfig()
    private var processes: BackgroundProcesses!
    private var counters: DeliveryCounters!
    private var hosts: GatewayHosts!
    private var batcher: PostBatcher?

    // MARK: Shared with other threads (under `inboxLock`)

    enum PokeKind: Sendable {
        case notifications
        case badge
        case boot(BootTicket)
    }

    private struct Inbox {
        var pokes: [([UInt8], PokeKind)] = []
        /// Sleeps that ended: key and sleep generation.
        var wakeups: [([UInt8], UInt64)] = []
        var committedSeq: UInt64 = 0
        var writeErrors: [([UInt8], any Error)] = []
        /// Slots given by ``GatewayHosts``: host and count.
        var grants: [(String, Int)] = []
        var stopping = false
        var cancelInFlight = false
    }
    private let inboxLock = Mutex(Inbox())

    // MARK: Curl thread only

    private enum Phase { case ready, waitingHost, inFlight, sleeping, finishing }

    private enum Request {
        case notification(pos: UInt64, loggedTS: Int64, badge: Int)
        case badge(Int)
    }

    private struct InFlight {
        var tag: UInt64
        var request: Request
        var pusher: PayloadWriter.PreparedPusher
        var sentAt: Double
    }

    private final class Run {
        let key: [UInt8]
        /// The pusher's user (the key's prefix).
        let userID: String
        let context: BackgroundProcessContext
        var state: DeliveryState
        /// The pusher as last read, with its part of every body.
        var pusher: PayloadWriter.PreparedPusher?
        /// The user's badge as last counted (a backlog of pushes to one user counts it once).
        var badgeCache = BadgeCache()
        var phase = Phase.ready
        /// The next notifications of the user: their pos and whether they were read.
        var queue: [(pos: UInt64, isRead: Bool)] = []
        var next = 0
        var needsLoad = true
        /// Poked while running: look again before ending.
        var dirty = false
        /// A receipt may have changed the badge: send it (alone) once nothing else is to send.
        var badgeDirty = false
        /// The gateway host of the pusher's URL (`scheme://authority`).
        var host: String?
        /// Whether the run holds one of `host`'s slots.
        var holdsSlot = false
        var inFlight: InFlight?
        var sleepGeneration: UInt64 = 0
        var sleeper: Task<Void, Never>?
        /// The last write job carrying this run's writes.
        var lastWriteSeq: UInt64 = 0
        /// A write or read of this run failed: it goes back to the stored state after a backoff.
        var error: (any Error)?
        var errorRetries = 0
        var bootTicket: BootTicket?
        /// Taken out of `runs`: a reference still queued somewhere (a host's waiting runs) is stale.
        var ended = false

        init(key: [UInt8], userID: String, context: BackgroundProcessContext) {
            self.key = key
            self.userID = userID
            self.context = context
            self.state = DeliveryState(key: key)
        }
    }

    /// Per-job write errors, filled by the writer (the job may run again after a map resize).
    private final class WriteErrors: @unchecked Sendable {
        var errors: [([UInt8], any Error)] = []
    }

    private var runs: [[UInt8]: Run] = [:]
    private var byTag: [UInt64: Run] = [:]
    private var nextTag: UInt64 = 1
    /// Runs waiting for a slot of a host, in order.
    private var waiting: [String: Deque<Run>] = [:]
    private var ops: [WriteOp] = []
    private var opRuns: [Run] = []
    private var writeSeq: UInt64 = 0
    private var committedSeq: UInt64 = 0
    private var finishing: [Run] = []
    private var ready: [Run] = []
    private var stopping = false
    private let payloads = PayloadWriter()
    private var account: ProcessAccount!
    private var cpuMark: (user: Double, system: Double)?
    /// ``UnreadGenerations/global`` read just before this step's read transaction.
    private var unreadGlobalBeforeRead: UInt64 = 0

    private static let headers = ["Content-Type": "application/json"]
    private static let roundSize = 100

    init(index: Int, http: CurlClient) {
        self.index = index
        self.http = http
    }

    /// Joins `engine`, on curl thread `index` of the client.
    func attach(to engine: DeliveryEngine) {
        self.engine = engine
        store = engine.store
        config = engine.config
        processes = engine.processes
        counters = engine.counters
        hosts = engine.hosts
        account = engine.processes.account(for: "httppush.process")
        let handler: @Sendable (inout PostBatch) -> Void = { [weak self] batch in self?.step(&batch) }
        do {
            batcher = try http.makeBatcher(thread: index, handler)
        } catch {
            engine.logger.warning("cannot start curl thread \(index) (\(error)); its pushers share thread 0")
            batcher = http.makeBatcher(handler)
        }
    }

    // MARK: Other threads

    func poke(_ key: [UInt8], _ kind: PokeKind) {
        inboxLock.withLock { $0.pokes.append((key, kind)) }
        batcher?.wake()
    }

    func granted(_ host: String, count: Int) {
        inboxLock.withLock { $0.grants.append((host, count)) }
        batcher?.wake()
    }

    func stop() {
        inboxLock.withLock { $0.stopping = true }
        batcher?.wake()
    }

    func cancelInFlight() {
        inboxLock.withLock { $0.cancelInFlight = true }
        batcher?.wake()
    }

    private func wakeUp(_ key: [UInt8], generation: UInt64) {
        inboxLock.withLock { $0.wakeups.append((key, generation)) }
        batcher?.wake()
    }

    private func committed(_ seq: UInt64, _ result: Result<Void, Error>, keys: [[UInt8]], errors: WriteErrors) {
        inboxLock.withLock { inbox in
            inbox.committedSeq = max(inbox.committedSeq, seq)
            switch result {
            case .success: inbox.writeErrors += errors.errors
            case .failure(let e): inbox.writeErrors += keys.map { ($0, e) }
            }
        }
        batcher?.wake()
    }

    // MARK: The curl thread

    private func step(_ batch: inout PostBatch) {
        guard let engine else { return }
        let cpu0 = BackgroundProcesses.threadCPU()
        if let mark = cpuMark {
            account.cpu(user: cpu0.user - mark.user, system: cpu0.system - mark.system)
        }
        let inbox: Inbox = inboxLock.withLock { i in
            defer {
                i.pokes.removeAll()
                i.wakeups.removeAll()
                i.writeErrors.removeAll()
                i.grants.removeAll()
                i.cancelInFlight = false
            }
            return i
        }
        committedSeq = max(committedSeq, inbox.committedSeq)
        var began = 0
        for (key, kind) in inbox.pokes {
            if let run = runs[key] {
                switch kind {
                case .notifications: run.dirty = true
                case .badge: run.badgeDirty = true
                case .boot(let ticket): ticket.started()  // already running
                }
                // A finishing run goes round again once its writes are committed (endFinishedRuns).
                continue
            }
            if stopping {
                if case .boot(let ticket) = kind { ticket.started() }
                continue
            }
            let run = Run(key: key, userID: key.withUnsafeBytes { Keys.userID(of: $0) }, context: processes.begin("httppush.process"))
            if case .badge = kind { run.badgeDirty = true }
            if case .boot(let ticket) = kind { run.bootTicket = ticket }
            runs[key] = run
            ready.append(run)
            began += 1
        }
        if began > 0 { engine.runsBegan(began) }
        // Each poke was counted as active until taken here (so a waiter that comes right after
        // a poke waits for its run): the runs it began, or joined, now count instead.
        if !inbox.pokes.isEmpty { engine.runsEnded(inbox.pokes.count) }
        for (key, error) in inbox.writeErrors {
            guard let run = runs[key], run.error == nil else { continue }
            run.error = error
            if run.phase == .finishing {
                run.phase = .ready
                ready.append(run)
            }
        }
        for (key, generation) in inbox.wakeups {
            if let run = runs[key], run.phase == .sleeping, run.sleepGeneration == generation {
                run.sleeper = nil
                run.phase = .ready
                ready.append(run)
            }
        }
        for (host, count) in inbox.grants { give(host, count: count) }
        if inbox.stopping && !stopping {
            stopping = true
            for run in runs.values where run.phase == .sleeping || run.phase == .waitingHost {
                run.sleeper?.cancel()
                run.sleeper = nil
                run.phase = .ready
                ready.append(run)
            }
        }
        if inbox.cancelInFlight {
            for (tag, _) in byTag { batch.cancel(tag: tag) }
        }
        for completion in batch.completions {
            guard let run = byTag.removeValue(forKey: completion.tag) else { continue }
            complete(run, completion.result)
        }

        if !ready.isEmpty {
            // Before the read transaction begins (see UnreadGenerations).
            unreadGlobalBeforeRead = store.unreadGenerations.global
            do {
                try store.read { view in
                    forEachReady { run in
                        do {
                            try drive(run, view, &batch)
                        } catch {
                            run.error = error
                            retryAfterError(run)
                        }
                    }
                }
            } catch {
                forEachReady { run in
                    run.error = error
                    retryAfterError(run)
                }
            }
            ready.removeAll(keepingCapacity: true)
        }
        flushWrites()
        endFinishedRuns(engine)

        if !runs.isEmpty {
            cpuMark = cpu0
        } else if cpuMark != nil || began > 0 {
            let cpu1 = BackgroundProcesses.threadCPU()
            account.cpu(user: cpu1.user - cpu0.user, system: cpu1.system - cpu0.system)
            cpuMark = nil
        }
    }

    /// Calls `body` on every run still ready in `ready`, which may grow meanwhile (a slot
    /// released by one run can make another ready). A boot poke counts as started once its run
    /// is no longer ready: it has a request in flight, waits, or has finished.
    private func forEachReady(_ body: (Run) -> Void) {
        var i = 0
        while i < ready.count {
            let run = ready[i]
            i += 1
            guard run.phase == .ready else { continue }
            body(run)
            if run.phase != .ready, let ticket = run.bootTicket {
                run.bootTicket = nil
                ticket.started()
            }
        }
    }

    /// Runs `run` until it has a request in flight, waits (a host slot, a backoff), or finishes.
    private func drive(_ run: Run, _ view: StoreReadView, _ batch: inout PostBatch) throws {
        let key = run.key
        if run.error != nil {
            retryAfterError(run)
            return
        }
        while true {
            if stopping {
                finish(run)  // shutting down: send nothing new
                return
            }
            if run.needsLoad {
                guard let pusher = try view.loadPusher(key: key), pusher.state.enabled, pusher.config.kind == .http else {
                    finish(run)  // removed or disabled
                    return
                }
                run.state.load(pusher.state, writesCommitted: run.lastWriteSeq <= committedSeq)
                // A persisted backoff is honoured, across restarts too; pokes do not cut it short.
                let wait = run.state.notBefore - SystemClock.nowMS()
                if wait > 0 {
                    releaseSlot(run, .none)
                    sleep(run, milliseconds: wait)
                    return
                }
                run.host = GatewayHosts.host(of: pusher.config.data["url"]?.stringValue ?? "")
                run.queue = try view.notificationPositions(user: pusher.config.id.userID, after: run.state.cursor, limit: Self.roundSize)
                run.next = 0
                run.needsLoad = false
                run.dirty = false
                if run.queue.isEmpty {
                    // Caught up.
                    for op in DeliveryRules.caughtUp(state: &run.state) { write(op, run) }
                    if run.badgeDirty {
                        run.badgeDirty = false
                        if try sendBadge(run, pusher.config, view, &batch) { return }
                        if run.phase == .waitingHost { return }
                    }
                    finish(run)
                    return
                }
            }
            guard run.next < run.queue.count else {
                run.needsLoad = true
                continue
            }
            let n = run.queue[run.next]
            let now = SystemClock.nowMS()
            if n.isRead {
                if case .pass(let op) = DeliveryRules.before(.read, pos: n.pos, state: &run.state, config: config, now: now) {
                    write(op, run)
                }
                run.next += 1
                continue
            }
            if !run.holdsSlot {
                guard acquireSlot(run) else { return }
            }
            guard let input = try view.rawPushInput(key: key, pos: n.pos), input.state.enabled else {
                finish(run)  // removed or disabled
                return
            }
            let pusher: PayloadWriter.PreparedPusher
            if let cached = run.pusher, cached.matches(input.pusherRecord) {
                pusher = cached
            } else {
                pusher = PayloadWriter.PreparedPusher(record: Array(input.pusherRecord), config: try input.decodePusher())
                run.pusher = pusher
            }
            let raw = input.entry.flatMap { RawNotification($0) }
            var note: PushNotification?
            var loggedTS: Int64 = 0
            let candidate: DeliveryRules.Candidate
            if let raw {
                loggedTS = raw.ts
                candidate = .unread(receivedTS: raw.receivedTS)
            } else if let entry = input.entry {
                // Not read in place: the full decoder says what is wrong (it throws), or what it is.
                let logged = try EntryCodec.decode(entry, pos: n.pos)
                if case .notification(let decoded) = logged.entry {
                    note = decoded
                    loggedTS = logged.ts
                    candidate = .unread(receivedTS: decoded.receivedTS)
                } else {
                    candidate = .gone
                }
            } else {
                candidate = .gone  // compacted away
            }
            if case .pass(let op) = DeliveryRules.before(candidate, pos: n.pos, state: &run.state, config: config, now: now) {
                if case .deadLetter = op {
                    counters.deadLetterMaxAge.increment()
                    run.context.logger.warning("dead-lettered notification at pos \(n.pos) for \(pusher.config.id.logName): \(DeadLetterReason.maxAge.label)")
                }
                write(op, run)
                run.next += 1
                continue
            }
            guard let url = pusher.url else {
                releaseSlot(run, .none)
                answered(run, .failed(.noURL), pos: n.pos, badge: 0, pusher: pusher)
                if run.phase != .ready { return }
                continue
            }
            let badge = try view.badge(user: run.userID, rule: config.badgeRule, cache: &run.badgeCache,
                                       globalBeforeRead: unreadGlobalBeforeRead)
            var body: [UInt8]?
            if let raw {
                body = payloads.notification(raw, pusher: pusher, badge: badge, includeContent: config.includeContent)
            }
            if body == nil {
                if note == nil, let entry = input.entry, case .notification(let decoded) = try EntryCodec.decode(entry, pos: n.pos).entry {
                    note = decoded
                }
                guard let note else { throw CorruptData(what: "log entry \(n.pos)", reason: "not a notification") }
                body = GatewayPayload.notification(note, pusher: pusher.config, badge: badge,
                                                   options: .init(includeContent: config.includeContent)).serialized()
            }
            send(run, url: url, body: body!, request: .notification(pos: n.pos, loggedTS: loggedTS, badge: badge),
                 pusher: pusher, &batch)
            return
        }
    }

    /// The badge-only push of a caught-up run, if the badge changed. Returns whether a request
    /// was started; the run may instead wait for a slot (phase `.waitingHost`, badge dirty again).
    private func sendBadge(_ run: Run, _ config: PusherConfig, _ view: StoreReadView, _ batch: inout PostBatch) throws -> Bool {
        let badge = try view.badge(user: run.userID, rule: self.config.badgeRule, cache: &run.badgeCache,
                                   globalBeforeRead: unreadGlobalBeforeRead)
        var probe = run.state
        guard DeliveryRules.badge(badge, disabled: GatewayPayload.badgeDisabled(config), state: &probe) != nil else { return false }
        guard let url = config.data["url"]?.stringValue else { return false }
        if !run.holdsSlot {
            guard acquireSlot(run) else {
                run.badgeDirty = true  // sent once a slot comes
                return false
            }
        }
        guard let op = DeliveryRules.badge(badge, disabled: false, state: &run.state) else { return false }
        write(op, run)
        let pusher = run.pusher ?? PayloadWriter.PreparedPusher(record: [], config: config)
        let body = GatewayPayload.badge(badge, pusher: config).serialized()
        send(run, url: url, body: body, request: .badge(badge), pusher: pusher, &batch)
        return true
    }

    private func send(_ run: Run, url: String, body: [UInt8], request: Request, pusher: PayloadWriter.PreparedPusher,
                      _ batch: inout PostBatch) {
        let tag = nextTag
        nextTag += 1
        batch.start(PostRequest(tag: tag, url: url, body: body, headers: Self.headers,
                                timeout: .milliseconds(config.requestTimeoutMS), addressPolicy: config.addressPolicy))
        run.inFlight = InFlight(tag: tag, request: request, pusher: pusher, sentAt: SystemClock.monotonicSeconds())
        run.phase = .inFlight
        byTag[tag] = run
    }

    private func complete(_ run: Run, _ result: Result<HTTPResponse, any Error>) {
        guard let f = run.inFlight else { return }
        run.inFlight = nil
        run.phase = .ready
        ready.append(run)
        let latencyMS = (SystemClock.monotonicSeconds() - f.sentAt) * 1000
        let answer: DeliveryRules.Answer
        var sample = GatewayHosts.Sample.answered(ms: latencyMS)
        switch result {
        case .success(let response):
            if (200..<300).contains(response.status) {
                // Sygnal labels its JSON text/html: parse whatever the Content-Type says.
                if let rejected = GatewayPayload.rejected(response.body) {
                    var own = false
                    for pushkey in rejected {
                        if pushkey == f.pusher.config.id.pushkey {
                            own = true
                        } else {
                            run.context.logger.warning("gateway rejected pushkey \(PusherID.shortened(pushkey)), not this pusher's; ignored (\(f.pusher.config.id.logName))")
                        }
                    }
                    answer = .accepted(rejectedOwn: own)
                } else {
                    answer = .failed(.badAnswer)
                }
            } else if response.status == 429 || response.status == 503 {
                sample = .congested
                if let seconds = response.retryAfterSeconds {
                    let ms = min(config.backoffMaxMS, seconds * 1000)
                    answer = .retryAfter(ms: ms)
                    if let host = run.host { hosts.pause(host, forMS: ms) }
                } else {
                    answer = .failed(.status(response.status))
                }
            } else {
                answer = .failed(.status(response.status))
            }
        case .failure(is CancellationError):
            answer = .cancelled
            sample = .none
        case .failure(let error):
            let failure = GatewayFailure(error)
            if case .timeout = failure { sample = .congested } else { sample = .none }
            answer = .failed(failure)
        }
        releaseSlot(run, sample)
        switch f.request {
        case .notification(let pos, let loggedTS, let badge):
            if case .accepted = answer {
                counters.pushesProcessed.increment()
                let latency = Double(SystemClock.nowMS() - loggedTS) / 1000
                counters.pushLatency.recordSeconds(latency)
                // The hook is taken out in its struct: a closure returned by `withLock` (generic)
                // would be re-wrapped, an allocation per push.
                counters.onDelivered.withLock { $0 }.call?(pos, latency)
            }
            answered(run, answer, pos: pos, badge: badge, pusher: f.pusher, loggedTS: loggedTS)
        case .badge(let badge):
            switch answer {
            case .accepted: counters.badgesProcessed.increment()
            case .failed(let failure):
                counters.badgesFailed.increment()
                failure.count()
                run.context.logger.warning("failed to send badge count (\(failure.why)) for \(f.pusher.config.id.logName); badge \(badge)")
            case .retryAfter, .cancelled: break
            }
            let ops = DeliveryRules.badgeAnswered(answer, id: f.pusher.config.id, state: run.state)
            for op in ops { write(op, run) }
            if !ops.isEmpty {
                run.context.logger.warning("gateway rejected our pushkey: removing the pusher (\(f.pusher.config.id.logName))")
                finish(run)
            } else if case .cancelled = answer {
                finish(run)
            } else {
                run.needsLoad = true  // anything new meanwhile?
            }
        }
    }

    /// A notification push's answer, through the rules.
    private func answered(_ run: Run, _ answer: DeliveryRules.Answer, pos: UInt64, badge: Int,
                          pusher: PayloadWriter.PreparedPusher, loggedTS: Int64 = 0) {
        let (op, next) = DeliveryRules.answered(answer, pos: pos, badge: badge, id: pusher.config.id, state: &run.state,
                                                config: config, now: SystemClock.nowMS())
        if let op { write(op, run) }
        if case .failed(let failure) = answer {
            counters.pushesFailed.increment()
            failure.count()
            var gaveUp = false
            var delay: Int64 = 0
            if case .failure(_, _, _, let giveUp, _, let nextAttempt, let now)? = op {
                gaveUp = giveUp
                delay = nextAttempt - now
            }
            if gaveUp { counters.deadLetterGiveUp.increment() }
            run.context.logger.warning("push failed (\(failure.why)) for \(pusher.config.id.logName); \(gaveUp ? "gave up on pos \(pos); " : "")next attempt in \(delay) ms")
        }
        switch next {
        case .next:
            run.next += 1
        case .again:
            break  // the host is paused: the next slot comes after the pause
        case .backoff:
            run.needsLoad = true  // the reload waits for the backoff
        case .stop:
            if case .accepted(rejectedOwn: true) = answer {
                counters.pushesProcessed.increment()
                run.context.logger.warning("gateway rejected our pushkey: removing the pusher (\(pusher.config.id.logName))")
            }
            finish(run)
        }
    }

    /// A read or a write of the run failed (a storage error, a corrupt entry): whatever it did
    /// since its last committed write is not trusted; it goes back to the stored state and tries
    /// again after a backoff (doubling from `push.backoff_initial`, at most `push.backoff_max`).
    private func retryAfterError(_ run: Run) {
        guard let error = run.error else { return }
        run.error = nil
        releaseSlot(run, .none)
        if stopping {
            finish(run)
            return
        }
        let delay = min(config.backoffMaxMS, config.backoffInitialMS << min(20, run.errorRetries))
        run.errorRetries += 1
        run.context.logger.error("delivery stopped by an error (\(error)); retrying from the stored cursor in \(delay) ms")
        run.state = DeliveryState(key: run.key)  // forget what was not stored
        run.needsLoad = true
        sleep(run, milliseconds: delay)
    }

    private func sleep(_ run: Run, milliseconds: Int64) {
        run.phase = .sleeping
        run.sleepGeneration += 1
        let generation = run.sleepGeneration
        let key = run.key
        run.sleeper = Task.detached { [weak self] in
            try? await Task.sleep(for: .milliseconds(milliseconds))
            if Task.isCancelled { return }
            self?.wakeUp(key, generation: generation)
        }
    }

    private func write(_ op: WriteOp, _ run: Run) {
        ops.append(op)
        opRuns.append(run)
    }

    /// Queues this step's writes as one job for the writer's group commit: a lazy one (cursor
    /// advances and backoff state may wait a few milliseconds for company; a crash then repeats
    /// those pushes), unless it removes a pusher, which is a log entry and goes at once. Each
    /// operation is all or nothing; a storage error fails the job, which the writer retries
    /// after growing the map when it was full.
    private func flushWrites() {
        guard !ops.isEmpty else { return }
        let lazy = !ops.contains(where: \.removesPusher)
        writeSeq += 1
        let seq = writeSeq
        for run in opRuns { run.lastWriteSeq = seq }
        let batchOps = ops
        let context = opRuns[0].context
        ops.removeAll(keepingCapacity: true)
        opRuns.removeAll(keepingCapacity: true)
        let errors = WriteErrors()
        store.writeDeferred(lazy: lazy, { ctx in
            errors.errors.removeAll()
            try context.transaction {
                for op in batchOps {
                    if let error = try ctx.allOrNothing(writesOnce: op.writesOnce, op.apply) { errors.errors.append((op.key, error)) }
                }
            }
        }, onCommit: { [weak self] result in
            self?.committed(seq, result, keys: batchOps.map(\.key), errors: errors)
        })
    }

    private func finish(_ run: Run) {
        releaseSlot(run, .none)
        run.phase = .finishing
        finishing.append(run)
    }

    /// Ends the finishing runs whose writes are committed, or starts them again when poked
    /// meanwhile.
    private func endFinishedRuns(_ engine: DeliveryEngine) {
        guard !finishing.isEmpty else { return }
        var stillWaiting: [Run] = []
        var again: [Run] = []
        var ended = 0
        for run in finishing {
            guard run.phase == .finishing else { continue }
            if run.lastWriteSeq > committedSeq {
                stillWaiting.append(run)
                continue
            }
            if !stopping, run.dirty || run.badgeDirty {
                run.phase = .ready
                run.needsLoad = true
                again.append(run)
                continue
            }
            runs[run.key] = nil
            run.ended = true
            processes.end(run.context, error: nil)
            if let ticket = run.bootTicket {
                run.bootTicket = nil
                ticket.started()
            }
            ended += 1
        }
        finishing = stillWaiting
        if ended > 0 { engine.runsEnded(ended) }
        if !again.isEmpty {
            ready.append(contentsOf: again)
            batcher?.wake()  // driven in the next step
        }
    }

    // MARK: Host slots

    private func acquireSlot(_ run: Run) -> Bool {
        guard let host = run.host else { return true }
        if hosts.acquire(host, shard: index) {
            run.holdsSlot = true
            return true
        }
        run.phase = .waitingHost
        waiting[host, default: []].append(run)
        return false
    }

    /// Slots given by ``GatewayHosts`` to this thread: to the runs waiting for that host, in
    /// order (they are driven in this step, or the next); what nobody waits for any more goes back.
    private func give(_ host: String, count: Int) {
        var left = count
        while left > 0 {
            // One lookup of the host's queue (this runs after every answer): popped in place.
            if let i = waiting.index(forKey: host) {
                while left > 0, let run = waiting.values[i].popFirst() {
                    guard run.phase == .waitingHost, !run.holdsSlot, !run.ended else { continue }
                    run.holdsSlot = true
                    run.phase = .ready
                    ready.append(run)
                    left -= 1
                }
                if waiting.values[i].isEmpty { waiting.remove(at: i) }
            }
            guard left > 0 else { break }
            left = hosts.giveBack(host, shard: index, count: left)
        }
    }

    private func releaseSlot(_ run: Run, _ sample: GatewayHosts.Sample) {
        guard run.holdsSlot, let host = run.host else { return }
        run.holdsSlot = false
        let own = hosts.release(host, shard: index, sample)
        if own > 0 { give(host, count: own) }
    }
}
