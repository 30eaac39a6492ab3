import Curl
import DequeModule
import Logging
import Metrics
import PushlogCore
import Synchronization

/// The HTTP pushers' loops as state machines driven in batches, on the HTTP client's curl
/// thread (a ``PostBatcher`` handler), instead of one task per pusher awaiting one request at a
/// time.
///
/// Each step takes every completion of one turn of the multi handle, reads what the next
/// pushes need in ONE read transaction (the pusher, the next notifications, the entry and the
/// badge), starts the next requests, and queues all the cursor advances of the step as ONE job
/// for the writer's group commit. So a push costs no task switch and no thread hop of its own:
/// the hops (a wake-up from the writer after a commit, one from whoever pokes) are per batch.
///
/// The rules are ``HTTPPusher/deliverUntilCaughtUp()``'s, one for one: one request in flight
/// per pusher, in log order; read notifications skipped with the cursor advanced; compacted
/// entries skipped; `max_age` and give-up dead letters; a persisted backoff honoured and never
/// cut short by pokes; a rejected own pushkey removes the pusher; a pusher removed or disabled
/// stops at its next notification; per-host in-flight limit per engine (FIFO). Each activation is one
/// `httppush.process` (``BackgroundProcesses/begin(_:)``); while any runs, the curl thread's
/// CPU time (the steps, and libcurl's work on their requests in between) is charged to that
/// name. An activation ends once caught up (or stopped) and its writes are committed.
///
/// Threading: ``runs`` and everything in ``Run`` belong to the curl thread (``step(_:)``);
/// other threads talk to it only through ``inbox`` followed by ``PostBatcher/wake()``.
final class HTTPDeliveryEngine: @unchecked Sendable {
    private weak var pool: PusherPool?
    private let store: Store
    private let config: PushConfig
    private let processes: BackgroundProcesses
    private var batcher: PostBatcher?

    // MARK: Shared with other threads (under `lock`)

    private struct Inbox {
        var activations: [[UInt8]] = []
        /// Backoffs that ended: key and sleep generation.
        var wakeups: [([UInt8], UInt64)] = []
        var committedSeq: UInt64 = 0
        var writeErrors: [([UInt8], any Error)] = []
        var stopping = false
        var cancelInFlight = false
        /// Activations not yet ended (counted from `activate`).
        var active = 0
        var endWaiters: [CheckedContinuation<Void, Never>] = []
    }
    private let lock = Mutex(())
    private var inbox = Inbox()

    // MARK: Curl thread only

    private enum Phase { case ready, waitingHost, inFlight, sleeping, finishing }

    private struct InFlight {
        var tag: UInt64
        var pos: UInt64
        var loggedTS: Int64
        var pusher: PayloadWriter.PreparedPusher
        var badge: Int
    }

    private final class Run {
        let key: [UInt8]
        /// The pusher's user (the key's prefix).
        let userID: String
        let context: BackgroundProcessContext
        /// The pusher as last read, with its part of every body.
        var pusher: PayloadWriter.PreparedPusher?
        /// The user's badge as last counted (a backlog of pushes to one user counts it once).
        var badgeCache = BadgeCache()
        var phase = Phase.ready
        var cursor: UInt64 = 0
        /// The next notifications of the user: their pos and whether they were read.
        var queue: [(pos: UInt64, isRead: Bool)] = []
        var next = 0
        var needsLoad = true
        /// Backoff known here, possibly ahead of the store (its write not yet committed).
        var notBefore: Int64 = 0
        var failingSince: Int64?
        /// The gateway host of the pusher's URL, with its in-flight count.
        var host: Host?
        /// The host whose in-flight slot this run holds, if any.
        var slot: Host?
        var inFlight: InFlight?
        var sleepGeneration: UInt64 = 0
        var sleeper: Task<Void, Never>?
        /// The last write job carrying this run's writes.
        var lastWriteSeq: UInt64 = 0
        var error: (any Error)?

        init(key: [UInt8], userID: String, context: BackgroundProcessContext) {
            self.key = key
            self.userID = userID
            self.context = context
        }
    }

    private enum WriteOp: Sendable {
        case advance(key: [UInt8], pos: UInt64, success: Bool, now: Int64, badge: Int?)
        case deadLetter(key: [UInt8], pos: UInt64, reason: DeadLetterReason, now: Int64)
        case failure(key: [UInt8], pos: UInt64, giveUp: Bool, since: Int64, nextAttempt: Int64, now: Int64)
        /// The gateway rejected the pusher's own pushkey: a `pusherRemoved` entry in the log.
        case removePusher(key: [UInt8], id: PusherID)

        var key: [UInt8] {
            switch self {
            case .advance(let key, _, _, _, _), .deadLetter(let key, _, _, _), .failure(let key, _, _, _, _, _),
                 .removePusher(let key, _): key
            }
        }

        func apply(_ ctx: StoreWriteContext) throws {
            switch self {
            case .advance(let key, let pos, let success, let now, let badge):
                try ctx.updateConsumer(key: key) { s in
                    s.cursor = max(s.cursor, pos)
                    if success {
                        s.lastSuccess = now
                        s.failingSince = nil
                        s.nextAttempt = nil
                        if let badge { s.lastBadge = Int64(badge) }
                    }
                }
            case .deadLetter(let key, let pos, let reason, let now):
                try ctx.addDeadLetter(key: key, pos: pos, reason: reason, ts: now)
                try ctx.updateConsumer(key: key) { $0.cursor = max($0.cursor, pos) }
            case .failure(let key, let pos, let giveUp, let since, let nextAttempt, let now):
                if giveUp { try ctx.addDeadLetter(key: key, pos: pos, reason: .giveUp, ts: now) }
                try ctx.updateConsumer(key: key) { s in
                    if giveUp { s.cursor = max(s.cursor, pos) }
                    s.failingSince = since
                    s.nextAttempt = nextAttempt
                }
            case .removePusher(_, let id):
                try ctx.append([.pusherRemoved(id)])
            }
        }
    }

    /// Per-job write errors, filled by the writer (the job may run again after a map resize).
    private final class WriteErrors: @unchecked Sendable {
        var errors: [([UInt8], any Error)] = []
    }

    private var runs: [[UInt8]: Run] = [:]
    private var byTag: [UInt64: Run] = [:]
    private var nextTag: UInt64 = 1
    /// Per gateway host (scheme://authority): requests in flight and runs waiting for a slot.
    private var hosts: [String: Host] = [:]

    private final class Host {
        var inFlight = 0
        /// Runs waiting for a host slot, first come first served.
        var waiters = Deque<Run>()
    }
    private var ops: [WriteOp] = []
    private var opRuns: [Run] = []
    private var writeSeq: UInt64 = 0
    private var committedSeq: UInt64 = 0
    private var finishing: [Run] = []
    private var ready: [Run] = []
    private var stopping = false
    private let payloads = PayloadWriter()
    /// The `httppush.process` counters, and this thread's CPU time at the start of the last step
    /// while activations were running (nil when idle).
    private let account: ProcessAccount
    private var cpuMark: (user: Double, system: Double)?
    /// ``UnreadGenerations/global`` read just before this step's read transaction.
    private var unreadGlobalBeforeRead: UInt64 = 0

    private static let headers = ["Content-Type": "application/json"]
    private static let roundSize = 100

    /// Requests this engine keeps in flight to one gateway host at most (its multi handle's
    /// connections to that host).
    private let perHostInFlight = PusherPool.perHostInFlight

    /// Engine `shard`, on the HTTP client's curl thread `shard`.
    init(pool: PusherPool, shard: Int = 0) {
        self.pool = pool
        self.store = pool.store
        self.config = pool.config
        self.processes = pool.processes
        self.account = pool.processes.account(for: "httppush.process")
        let handler: @Sendable (inout PostBatch) -> Void = { [weak self] batch in self?.step(&batch) }
        do {
            self.batcher = try pool.http.makeBatcher(thread: shard, handler)
        } catch {
            pool.logger.warning("cannot start curl thread \(shard) (\(error)); its pushers share thread 0")
            self.batcher = pool.http.makeBatcher(handler)
        }
    }

    // MARK: Other threads

    /// Starts an activation for `key` (the pool registered its loop).
    func activate(_ key: [UInt8]) {
        lock.withLock {
            inbox.activations.append(key)
            inbox.active += 1
        }
        batcher?.wake()
    }

    /// No new push is sent; sleeping activations end at once; in-flight ones end when answered.
    func stop() {
        lock.withLock { inbox.stopping = true }
        batcher?.wake()
    }

    /// Aborts the requests in flight (after the shutdown grace): they are sent again after a restart.
    func cancelInFlight() {
        lock.withLock { inbox.cancelInFlight = true }
        batcher?.wake()
    }

    /// Returns once no activation is running.
    func waitForActivationsToEnd() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let done: Bool = lock.withLock {
                if inbox.active == 0 { return true }
                inbox.endWaiters.append(c)
                return false
            }
            if done { c.resume() }
        }
    }

    private func wakeUp(_ key: [UInt8], generation: UInt64) {
        lock.withLock { inbox.wakeups.append((key, generation)) }
        batcher?.wake()
    }

    private func committed(_ seq: UInt64, _ result: Result<Void, Error>, keys: [[UInt8]], errors: WriteErrors) {
        lock.withLock {
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
        guard let pool else { return }
        // CPU accounting: while activations run, everything this thread does is their work
        // (libcurl sending and reading their requests between steps, and the steps), charged to
        // `httppush.process` from one reading per step.
        let cpu0 = BackgroundProcesses.threadCPU()
        if let mark = cpuMark {
            account.cpu(user: cpu0.user - mark.user, system: cpu0.system - mark.system)
        }
        let (activations, wakeups, committed, writeErrors, stop, cancel) = lock.withLock {
            defer {
                inbox.activations.removeAll()
                inbox.wakeups.removeAll()
                inbox.writeErrors.removeAll()
                inbox.cancelInFlight = false
            }
            return (inbox.activations, inbox.wakeups, inbox.committedSeq, inbox.writeErrors, inbox.stopping, inbox.cancelInFlight)
        }
        committedSeq = max(committedSeq, committed)
        for (key, error) in writeErrors where runs[key]?.error == nil { runs[key]?.error = error }
        for key in activations {
            let run = Run(key: key, userID: key.withUnsafeBytes { Keys.userID(of: $0) }, context: processes.begin("httppush.process"))
            runs[key] = run
            ready.append(run)
        }
        for (key, generation) in wakeups {
            if let run = runs[key], run.phase == .sleeping, run.sleepGeneration == generation {
                run.sleeper = nil
                run.phase = .ready
                ready.append(run)
            }
        }
        if stop && !stopping {
            stopping = true
            for run in runs.values where run.phase == .sleeping || run.phase == .waitingHost {
                run.sleeper?.cancel()
                run.sleeper = nil
                run.phase = .ready
                ready.append(run)
            }
        }
        if cancel {
            for (tag, _) in byTag { batch.cancel(tag: tag) }
        }
        for completion in batch.completions {
            guard let run = byTag.removeValue(forKey: completion.tag) else { continue }
            complete(run, completion.result, pool: pool)
        }

        if !ready.isEmpty {
            // Before the read transaction begins (see UnreadGenerations).
            unreadGlobalBeforeRead = store.unreadGenerations.global
            do {
                try store.read { view in
                    var i = 0
                    while i < ready.count {
                        let run = ready[i]
                        i += 1
                        guard run.phase == .ready else { continue }
                        do {
                            try drive(run, view, &batch, pool: pool)
                        } catch {
                            run.error = error
                            finish(run, pool: pool)
                        }
                    }
                }
            } catch {
                for run in ready where run.phase == .ready {
                    run.error = error
                    finish(run, pool: pool)
                }
            }
            ready.removeAll(keepingCapacity: true)
        }
        flushWrites()
        endFinishedRuns(pool: pool)

        if !runs.isEmpty {
            cpuMark = cpu0
        } else if cpuMark != nil || !activations.isEmpty {
            // Idle from here: close the interval; what the thread does next is not theirs.
            let cpu1 = BackgroundProcesses.threadCPU()
            account.cpu(user: cpu1.user - cpu0.user, system: cpu1.system - cpu0.system)
            cpuMark = nil
        }
    }

    /// Runs `run` until it has a request in flight, waits (host slot, backoff), or finishes.
    private func drive(_ run: Run, _ view: StoreReadView, _ batch: inout PostBatch, pool: PusherPool) throws {
        let key = run.key
        while true {
            if stopping {
                finish(run, pool: pool)  // shutting down: send nothing new
                return
            }
            if run.needsLoad {
                guard let pusher = try view.loadPusher(key: key), pusher.state.enabled, pusher.config.kind == .http else {
                    finish(run, pool: pool)
                    return
                }
                run.cursor = max(run.cursor, pusher.state.cursor)
                if run.lastWriteSeq <= committedSeq { run.failingSince = pusher.state.failingSince }
                // A persisted backoff is honoured, across restarts too; pokes do not cut it short.
                let notBefore = max(run.notBefore, pusher.state.nextAttempt ?? 0)
                let wait = notBefore - SystemClock.nowMS()
                if wait > 0 {
                    releaseSlot(run)
                    sleep(run, milliseconds: wait, pool: pool)
                    return
                }
                let host = PusherPool.host(of: pusher.config.data["url"]?.stringValue ?? "")
                if let known = hosts[host] {
                    run.host = known
                } else {
                    let new = Host()
                    hosts[host] = new
                    run.host = new
                }
                run.queue = try view.notificationPositions(user: pusher.config.id.userID, after: run.cursor, limit: Self.roundSize)
                run.next = 0
                run.needsLoad = false
                if run.queue.isEmpty {
                    finish(run, pool: pool)  // caught up
                    return
                }
            }
            guard run.next < run.queue.count else {
                run.needsLoad = true
                continue
            }
            let n = run.queue[run.next]
            if n.isRead {
                write(.advance(key: key, pos: n.pos, success: false, now: SystemClock.nowMS(), badge: nil), run)  // nothing to push
                run.cursor = n.pos
                run.next += 1
                continue
            }
            if run.slot == nil {
                guard acquireSlot(run) else { return }
            }
            guard let input = try view.rawPushInput(key: key, pos: n.pos), input.state.enabled else {
                finish(run, pool: pool)  // removed or disabled
                return
            }
            let pusher: PayloadWriter.PreparedPusher
            if let cached = run.pusher, cached.matches(input.pusherRecord) {
                pusher = cached
            } else {
                pusher = PayloadWriter.PreparedPusher(record: Array(input.pusherRecord), config: try input.decodePusher())
                run.pusher = pusher
            }
            guard let entry = input.entry else {
                write(.advance(key: key, pos: n.pos, success: false, now: SystemClock.nowMS(), badge: nil), run)  // compacted away
                run.cursor = n.pos
                run.next += 1
                continue
            }
            let raw = RawNotification(entry)
            let receivedTS: Int64, loggedTS: Int64
            var note: PushNotification?
            if let raw {
                receivedTS = raw.receivedTS
                loggedTS = raw.ts
            } else {
                // Not read in place: the full decoder says what is wrong (it throws), or what it is.
                let logged = try EntryCodec.decode(entry, pos: n.pos)
                guard case .notification(let decoded) = logged.entry else {
                    write(.advance(key: key, pos: n.pos, success: false, now: SystemClock.nowMS(), badge: nil), run)  // not a notification
                    run.cursor = n.pos
                    run.next += 1
                    continue
                }
                note = decoded
                receivedTS = decoded.receivedTS
                loggedTS = logged.ts
            }
            let now = SystemClock.nowMS()
            if config.maxAgeMS > 0, now - receivedTS > config.maxAgeMS {
                Counter(label: "pushlog_dead_letters_total", dimensions: [("reason", DeadLetterReason.maxAge.label)]).increment()
                run.context.logger.warning("dead-lettered notification at pos \(n.pos) for \(pusher.config.id.logName): \(DeadLetterReason.maxAge.label)")
                write(.deadLetter(key: key, pos: n.pos, reason: .maxAge, now: now), run)
                run.cursor = n.pos
                run.next += 1
                continue
            }
            guard let url = pusher.url else {
                releaseSlot(run)
                failed(run, pos: n.pos, .noURL, pusher: pusher.config.id, pool: pool)
                continue
            }
            let badge = try view.badge(user: run.userID, rule: config.badgeRule, cache: &run.badgeCache,
                                       globalBeforeRead: unreadGlobalBeforeRead)
            var body: [UInt8]?
            if let raw {
                body = payloads.notification(raw, pusher: pusher, badge: badge, includeContent: config.includeContent)
            }
            if body == nil {
                if note == nil, case .notification(let decoded) = try EntryCodec.decode(entry, pos: n.pos).entry { note = decoded }
                guard let note else { throw CorruptData(what: "log entry \(n.pos)", reason: "not a notification") }
                body = GatewayPayload.notification(note, pusher: pusher.config, badge: badge,
                                                   options: .init(includeContent: config.includeContent)).serialized()
            }
            let tag = nextTag
            nextTag += 1
            batch.start(PostRequest(tag: tag, url: url, body: body!, headers: Self.headers,
                                    timeout: .milliseconds(config.requestTimeoutMS), addressPolicy: config.addressPolicy))
            run.inFlight = InFlight(tag: tag, pos: n.pos, loggedTS: loggedTS, pusher: pusher, badge: badge)
            run.phase = .inFlight
            byTag[tag] = run
            return
        }
    }

    private func complete(_ run: Run, _ result: Result<HTTPResponse, any Error>, pool: PusherPool) {
        guard let f = run.inFlight else { return }
        run.inFlight = nil
        run.phase = .ready
        releaseSlot(run)
        ready.append(run)
        let response: HTTPResponse
        switch result {
        case .success(let r): response = r
        case .failure(let error as CancellationError):
            _ = error
            finish(run, pool: pool)  // stopping: not a failure of the gateway
            return
        case .failure(let error):
            failed(run, pos: f.pos, GatewayFailure(error), pusher: f.pusher.config.id, pool: pool)
            return
        }
        guard (200..<300).contains(response.status) else {
            failed(run, pos: f.pos, .status(response.status), pusher: f.pusher.config.id, pool: pool)
            return
        }
        // Sygnal labels its JSON text/html: parse whatever the Content-Type says.
        guard let rejected = GatewayPayload.rejected(response.body) else {
            failed(run, pos: f.pos, .badAnswer, pusher: f.pusher.config.id, pool: pool)
            return
        }
        for pushkey in rejected {
            if pushkey == f.pusher.config.id.pushkey {
                run.context.logger.warning("gateway rejected our pushkey: removing the pusher (\(f.pusher.config.id.logName))")
                // Committed with this step's writes (not lazily); the run ends once it is.
                write(.removePusher(key: run.key, id: f.pusher.config.id), run)
                pool.pushesProcessed.increment()
                finish(run, pool: pool)
                return
            }
            run.context.logger.warning("gateway rejected pushkey \(PusherID.shortened(pushkey)), not this pusher's; ignored (\(f.pusher.config.id.logName))")
        }
        pool.pushesProcessed.increment()
        let now = SystemClock.nowMS()
        let latency = Double(now - f.loggedTS) / 1000
        pool.pushLatency.recordSeconds(latency)
        pool.onDelivered?(f.pos, latency)
        write(.advance(key: run.key, pos: f.pos, success: true, now: now, badge: f.badge), run)
        run.cursor = max(run.cursor, f.pos)
        run.next += 1
        run.failingSince = nil
        run.notBefore = 0
    }

    /// A failed push: schedule the next attempt, or give this notification up when the pusher
    /// has failed for longer than `push.give_up_after`. The run then reloads and waits.
    private func failed(_ run: Run, pos: UInt64, _ failure: GatewayFailure, pusher: PusherID, pool: PusherPool) {
        pool.pushesFailed.increment()
        failure.count()
        let now = SystemClock.nowMS()
        let since = run.failingSince ?? now
        let giveUp = now - since >= config.giveUpAfterMS
        let delay = config.backoff(failingSince: since, now: now)
        write(.failure(key: run.key, pos: pos, giveUp: giveUp, since: since, nextAttempt: now + delay, now: now), run)
        if giveUp {
            Counter(label: "pushlog_dead_letters_total", dimensions: [("reason", DeadLetterReason.giveUp.label)]).increment()
            run.cursor = max(run.cursor, pos)
        }
        run.failingSince = since
        run.notBefore = now + delay
        run.needsLoad = true  // the next attempt waits for the backoff
        run.context.logger.warning("push failed (\(failure.why)) for \(pusher.logName); \(giveUp ? "gave up on pos \(pos); " : "")next attempt in \(delay) ms")
    }

    private func sleep(_ run: Run, milliseconds: Int64, pool: PusherPool) {
        pool.releaseBootSlot(key: run.key)
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
    /// those pushes), unless it removes a pusher, which is a log entry and goes at once.
    private func flushWrites() {
        guard !ops.isEmpty else { return }
        let lazy = !ops.contains { if case .removePusher = $0 { true } else { false } }
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
            context.transaction {
                for op in batchOps {
                    do { try op.apply(ctx) } catch { errors.errors.append((op.key, error)) }
                }
            }
        }, onCommit: { [weak self] result in
            self?.committed(seq, result, keys: batchOps.map(\.key), errors: errors)
        })
    }

    private func finish(_ run: Run, pool: PusherPool) {
        releaseSlot(run)
        run.phase = .finishing
        pool.releaseBootSlot(key: run.key)  // the first pass is over
        finishing.append(run)
    }

    /// Ends the finishing runs whose writes are committed, or starts them again when poked
    /// meanwhile (as a task loop would go round again).
    private func endFinishedRuns(pool: PusherPool) {
        guard !finishing.isEmpty else { return }
        var waiting: [Run] = []
        var again: [Run] = []
        var ended = 0
        for run in finishing {
            guard run.phase == .finishing else { continue }
            if run.lastWriteSeq > committedSeq {
                waiting.append(run)
                continue
            }
            if pool.httpLoopEndsOrGoesAgain(key: run.key, force: run.error != nil) {
                run.phase = .ready
                run.needsLoad = true
                again.append(run)
                continue
            }
            runs[run.key] = nil
            processes.end(run.context, error: run.error)
            pool.resumeIdleWaiters()
            ended += 1
        }
        finishing = waiting
        if ended > 0 {
            let waiters: [CheckedContinuation<Void, Never>] = lock.withLock {
                inbox.active -= ended
                guard inbox.active == 0 else { return [] }
                defer { inbox.endWaiters.removeAll() }
                return inbox.endWaiters
            }
            for w in waiters { w.resume() }
        }
        if !again.isEmpty {
            ready.append(contentsOf: again)
            batcher?.wake()  // driven in the next step
        }
    }

    // MARK: Host slots

    private func acquireSlot(_ run: Run) -> Bool {
        guard let host = run.host else { return true }  // not loaded: cannot happen
        if host.inFlight < perHostInFlight {
            host.inFlight += 1
            run.slot = host
            return true
        }
        run.phase = .waitingHost
        host.waiters.append(run)
        return false
    }

    /// Gives the slot to the first run waiting for that host (FIFO), or frees it.
    private func releaseSlot(_ run: Run) {
        guard let host = run.slot else { return }
        run.slot = nil
        while let waiter = host.waiters.popFirst() {
            guard waiter.phase == .waitingHost else { continue }
            waiter.slot = host
            waiter.phase = .ready
            ready.append(waiter)
            return
        }
        host.inFlight -= 1
    }
}

/// The HTTP delivery spread over ``PushConfig/deliveryThreads`` engines, each on its own curl
/// thread: a pusher always goes to the same one (by its key), so its pushes stay in order and
/// one at a time, and the engines share nothing but the store and the pool.
final class DeliveryEngines: Sendable {
    private let engines: [HTTPDeliveryEngine]

    init(pool: PusherPool) {
        let n = max(1, pool.config.deliveryThreads)
        engines = (0..<n).map { HTTPDeliveryEngine(pool: pool, shard: $0) }
    }

    /// The engine of the pusher at `key`: its last bytes are a hash of its app id and pushkey.
    private func engine(for key: [UInt8]) -> HTTPDeliveryEngine {
        guard engines.count > 1 else { return engines[0] }
        var h: UInt64 = 14_695_981_039_346_656_037
        for b in key.suffix(8) { h = (h ^ UInt64(b)) &* 1_099_511_628_211 }
        return engines[Int(h % UInt64(engines.count))]
    }

    func activate(_ key: [UInt8]) { engine(for: key).activate(key) }

    func stop() { for e in engines { e.stop() } }

    func cancelInFlight() { for e in engines { e.cancelInFlight() } }

    func waitForActivationsToEnd() async {
        for e in engines { await e.waitForActivationsToEnd() }
    }
}
