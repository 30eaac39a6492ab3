import Logging
import Metrics
import PushlogCore

public struct SynapseFollowerOptions: Sendable {
    public var shard = Shard.all
    public var pollInterval: Duration = .milliseconds(50)
    /// How long a row may stay invisible behind a higher one (`source.synapse.lateness`).
    public var lateness: Duration = .seconds(10)
    /// How much history the first start imports (`source.synapse.backfill`).
    public var backfill: Duration = .seconds(7 * 86_400)
    /// Rows read per stream per poll. Each query costs PostgreSQL a few ms of planning: with the
    /// push-action query as it was then (joined per row), a catch-up of 200,000 push actions
    /// took 1.83 s in batches of 20,000 against 2.01 s in batches of 5,000 (and 1.92 s in
    /// batches of 50,000, which overlap reading, decoding and writing less).
    public var batchSize = 20_000
    /// How often a live poll counts its whole trailing window again (a row that commits late
    /// goes out within this); between, it checks only the part leaving the window. Counting a
    /// window of 20,000 rows (10 s at 2,000 pushes/s) took 60–150 ms of every 50 ms poll.
    public var windowCheckInterval: Duration = .seconds(1)
    public init() {}
}

/// Follows a Synapse database into the log: pushers (and their deletions), push actions and
/// read receipts, each by its own stream id.
///
/// Each poll appends what it read and stores every stream's position in one write transaction,
/// so a restart resumes exactly there. Stream ids are handed out before their transactions
/// commit, so each poll also re-checks a trailing window (`lateness` worth of positions) and
/// appends a row that showed up late, once: what was taken is remembered in `source_seen`.
public actor SynapseFollower {
    let store: Store
    let source: any SynapseSource
    let options: SynapseFollowerOptions
    let logger: Logger
    let onAppended: @Sendable (AppendResult) -> Void
    /// When each head of the source was first seen, per stream: the window starts at the newest
    /// one seen at least `lateness` ago.
    private var history: [String: [(at: Double, position: Int64)]] = [:]
    /// Per stream, the newest head that left `history`: every row at or below it has committed.
    private var settled: [String: Int64] = [:]
    /// Per stream, when a live poll last checked the whole window.
    private var windowChecked: [String: Double] = [:]
    /// The next batch of push actions, read ahead while a catch-up decodes the one before it.
    private var prefetched: (above: Int64, task: Task<(raw: [SQLRow], position: Int64, full: Bool), Error>)?
    private var started = false
    private let lagGauge = Gauge(label: "pushlog_source_lag_seconds")
    private let errors = Counter(label: "pushlog_source_errors_total")

    /// The streams in the order a poll appends them: a pusher before the notifications that
    /// follow its creation, receipts after the notifications they cover.
    static let streams: [SynapseStream] = [.pushers, .deletedPushers, .pushActions, .receipts]

    public init(store: Store, source: any SynapseSource, options: SynapseFollowerOptions = SynapseFollowerOptions(),
                logger: Logger = Logger(label: "pushlog.synapse"),
                onAppended: @escaping @Sendable (AppendResult) -> Void = { _ in }) {
        self.store = store
        self.source = source
        self.options = options
        self.logger = logger
        self.onAppended = onAppended
    }

    static func key(_ stream: SynapseStream) -> String { "synapse.\(stream.name)" }

    // MARK: one poll

    public struct Progress: Sendable {
        /// Rows appended to the log by this call.
        public var appended = 0
        /// Nothing left to read below the source's heads.
        public var caughtUp = true
        public var positions: [String: Int64] = [:]
    }

    typealias Batch = (stream: SynapseStream, rows: [StreamRow], next: SourcePosition)
    /// A catch-up's write under way: the task, what it writes, and the progress to report.
    private typealias Writing = (task: Task<Int, Error>, batches: [Batch], progress: Progress)

    /// The first start's import when no position is stored yet, then one poll of every stream.
    public func poll() async throws -> Progress {
        try await startIfNeeded()
        let stored = try store.sourcePositions()
        var (batches, progress) = try await read(from: stored)
        progress.appended = try await write(batches, over: stored)
        recordPositions(batches)
        return progress
    }

    func startIfNeeded() async throws {
        if !started {
            try await firstStart()
            started = true
        }
    }

    /// One poll's reads from the positions `stored`: what to append, and where each stream gets.
    /// `pending`: the write that will store `stored`, still under way. Its rows are not yet in
    /// `source_seen`, so the trailing window is counted only once it has finished: counted
    /// before, the counts differ and the whole part of the window being checked is read again
    /// (a build whose writes finished after the next poll's read took twice as long to catch up).
    ///
    /// Every query of the poll runs first, then the rows are decoded. Behind a full batch of push
    /// actions, the next batch is read meanwhile (``prefetched``), as the first start does: a
    /// catch-up after a restart read, then decoded, every batch in turn, ~50 ms more per batch of
    /// 20,000 rows. The prefetch starts once this poll's own queries are done, so that it never
    /// holds them up.
    func read(from stored: [String: SourcePosition], after pending: Task<Int, Error>? = nil) async throws
        -> ([Batch], Progress)
    {
        var progress = Progress()
        let now = SystemClock.nowMS()
        let mono = SystemClock.monotonicSeconds()
        var fetched: [(stream: SynapseStream, raw: [SQLRow], late: [StreamRow], next: SourcePosition, full: Bool)] = []
        for stream in Self.streams {
            let key = Self.key(stream)
            let at = stored[key] ?? SourcePosition(position: 0, windowStart: 0)
            let (raw, newPosition, full) = try await fetchNext(stream, above: at.position)
            // The source's head as seen now: behind a full batch it is above the position reached.
            let head = full ? max(newPosition, try await source.query(stream.head, []).first?.first?.int ?? 0) : newPosition
            let window = advanceWindow(key, stored: at.windowStart, head: head, position: newPosition,
                                       seenAt: SystemClock.monotonicSeconds(), mono: mono)
            // Rows that may have committed after the follower passed their position. The part
            // leaving the window is checked on every poll (once, after it settled). Following
            // live, the whole window is too, at most every `windowCheckInterval`, so a late row
            // goes out soon; catching up, never: counting the whole window every batch would
            // cost time in proportion to the window's size.
            var late: [StreamRow] = []
            let wholeWindow = !full && mono - (windowChecked[key] ?? -.infinity) >= seconds(options.windowCheckInterval)
            if wholeWindow { windowChecked[key] = mono }
            let checkedUpTo = wholeWindow ? at.position : min(window, at.position)
            if at.windowStart < checkedUpTo {
                _ = await pending?.result
                late = try await lateRows(stream, key: key, above: at.windowStart, atMost: checkedUpTo, now: now)
            }
            if full { progress.caughtUp = false }
            fetched.append((stream, raw, late, SourcePosition(position: newPosition, windowStart: window), full))
            progress.positions[stream.name] = newPosition
            // While pushers are still being imported (more than a batch of them), the other
            // streams wait: a notification must not reach the log before its user's pusher.
            if stream.name == SynapseStream.pushers.name && full { break }
        }
        if let r = fetched.first(where: { $0.full && $0.stream.name == SynapseStream.pushActions.name }) {
            let from = r.next.position
            prefetched = (from, Task.detached { try await self.fetchNew(.pushActions, above: from, upTo: .max) })
        }
        var batches: [Batch] = []
        for r in fetched {
            var rows = r.stream.mapRows(r.raw, now)
            if r.stream.name == SynapseStream.pushActions.name {
                lagGauge.record(r.full ? max(0, Double(now - (rows.last?.receivedTS ?? now)) / 1000) : 0)
            }
            rows += r.late  // in place: `rows + late` copied every batch, retaining each row's strings
            batches.append((r.stream, rows, r.next))
        }
        return (batches, progress)
    }

    /// The next batch of `stream` above `above`: the one read ahead if it starts there, else
    /// read now. A batch read ahead from elsewhere (a write failed, and the positions went back)
    /// is dropped.
    private func fetchNext(_ stream: SynapseStream, above: Int64) async throws -> (raw: [SQLRow], position: Int64, full: Bool) {
        if stream.name == SynapseStream.pushActions.name, let p = prefetched {
            prefetched = nil
            if p.above == above { return try await p.task.value }
        }
        return try await fetchNew(stream, above: above, upTo: .max)
    }

    /// Writes one poll's batches, read from `stored`; nothing new and no position moved: no
    /// write transaction at all.
    func write(_ batches: [Batch], over stored: [String: SourcePosition]) async throws -> Int {
        guard batches.contains(where: { !$0.rows.isEmpty || stored[Self.key($0.stream)] != $0.next }) else { return 0 }
        return try await write(batches)
    }

    /// `pushlog_source_position{stream}`, once the positions are stored.
    func recordPositions(_ batches: [Batch]) {
        for b in batches {
            Gauge(label: "pushlog_source_position", dimensions: [("stream", b.stream.name)]).record(b.next.position)
        }
    }

    /// Reads rows above `above`, as read (not decoded); returns them, the position reached (every
    /// stream's first column is its position) and whether the batch was full (more to read).
    ///
    /// Off the actor (and started detached, not as a task of the actor), so that a catch-up's
    /// next read begins at once, while the actor decodes the batch before it: on the actor it
    /// began only once that decoding was done, ~50 ms later per batch of 20,000 rows.
    nonisolated func fetchNew(_ stream: SynapseStream, above: Int64, upTo: Int64) async throws
        -> (raw: [SQLRow], position: Int64, full: Bool)
    {
        try await plan(stream, above: above, upTo: upTo).value
    }

    /// A batch being read. A range of positions knows its end before its rows come; a batch
    /// read by `LIMIT` only once they have.
    enum PlannedBatch: Sendable {
        case range(rows: Task<[SQLRow], Error>, end: Int64, full: Bool)
        case limited(Task<(raw: [SQLRow], position: Int64, full: Bool), Error>)

        /// Where the batch ends, and whether it was full (more to read).
        func end() async throws -> (position: Int64, full: Bool) {
            switch self {
            case .range(_, let end, let full): return (end, full)
            case .limited(let task): let r = try await task.value; return (r.position, r.full)
            }
        }

        var value: (raw: [SQLRow], position: Int64, full: Bool) {
            get async throws {
                switch self {
                case .range(let rows, let end, let full): return (try await rows.value, end, full)
                case .limited(let task): return try await task.value
                }
            }
        }

        func cancel() {
            switch self {
            case .range(let rows, _, _): rows.cancel()
            case .limited(let task): task.cancel()
            }
        }
    }

    /// Starts reading the batch above `above` and returns once its end is known, before its rows
    /// are: a stream with a ``SynapseStream/boundary`` query reads the range of positions below
    /// the row after a batch's worth, so the first start reads the next batch while PostgreSQL still
    /// sends this one (on a second connection: the source's queries run side by side). Reading
    /// a batch then waiting for its rows to learn where the next began, the reads were the
    /// catch-up's pace: PostgreSQL made each batch, then sent it, then made the next.
    ///
    /// Every position is read whole. A full batch by `LIMIT` may end in the middle of the rows
    /// of one position (one event notifies many users): that position is read again next time.
    /// A range stops below the position of the row after a batch's worth (so it holds a batch at
    /// most), unless every row up to that one has that position: then that position is read
    /// whole at once.
    nonisolated func plan(_ stream: SynapseStream, above: Int64, upTo: Int64) async throws -> PlannedBatch {
        let limit = options.batchSize
        let source = self.source
        let select = stream.select(source.dialect)
        guard let boundary = stream.boundary else {
            return .limited(Task.detached { () -> (raw: [SQLRow], position: Int64, full: Bool) in
                let raw = try await source.query(select, [.int(above), .int(upTo), .int(Int64(limit))])
                guard stream.tableRows(raw) >= limit, let first = raw.first?.first?.int, let last = raw.last?.first?.int else {
                    return (raw, max(above, raw.last?.first?.int ?? above), false)
                }
                if first == last {
                    // One position holds more rows than a batch: take all of them at once (the
                    // rows just read are among them).
                    let all = try await source.query(select, [.int(last - 1), .int(last), .int(Int64(Int32.max))])
                    return (all, last, true)
                }
                return (raw, last - 1, true)
            })
        }
        // The position of the row after a batch's worth.
        let at = try await source.query(boundary, [.int(above), .int(upTo), .int(Int64(limit))]).first?.first?.int
        guard let at else {
            // The last batch: it reaches as far as its last row (`upTo` may be far above: `.max`).
            let raw = try await source.query(select, [.int(above), .int(upTo), .int(Int64(Int32.max))])
            return .range(rows: Task { raw }, end: max(above, raw.last?.first?.int ?? above), full: false)
        }
        let end = at - 1 > above ? at - 1 : at
        return .range(rows: Task.detached {
            try await source.query(select, [.int(above), .int(end), .int(Int64(Int32.max))])
        }, end: end, full: true)
    }

    /// Rows in the trailing window that may have committed late: counted on both sides first,
    /// read in full only when the counts differ.
    func lateRows(_ stream: SynapseStream, key: String, above: Int64, atMost: Int64, now: Int64) async throws -> [StreamRow] {
        let counted = try await source.query(stream.count, [.int(above), .int(atMost)]).first?.first?.int ?? 0
        let seen = try store.sourceSeenCount(key, above: above, atMost: atMost)
        guard counted != seen else { return [] }
        return stream.mapRows(try await source.query(stream.select(source.dialect),
                                                     [.int(above), .int(atMost), .int(Int64(Int32.max))]), now)
    }

    /// The new window start: the newest head of the source seen at least `lateness` before
    /// `mono` (every row at or below it has committed by now), never past `position`. `head`,
    /// seen at `seenAt`, joins the history. Heads rather than positions reached: catching up,
    /// the head seen when it began is far above the rows being read, so once `lateness` has
    /// passed the window closes behind them.
    func advanceWindow(_ key: String, stored: Int64, head: Int64, position: Int64, seenAt: Double, mono: Double) -> Int64 {
        var h = history[key] ?? []
        if h.last?.position != head { h.append((seenAt, head)) }
        let lateness = seconds(options.lateness)
        var committed = settled[key] ?? 0
        while let first = h.first, first.at <= mono - lateness {
            committed = max(committed, first.position)
            h.removeFirst()
        }
        history[key] = h
        settled[key] = committed
        return max(stored, min(committed, position))
    }

    private func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// Appends the rows not taken before (of this shard's users) and stores the positions, in
    /// one write transaction.
    ///
    /// `fresh`: the first start's import, whose batches follow one another from positions with
    /// no window (the window start is the position), so no row up to a batch's new position can
    /// have been taken before: those rows are appended without looking them up or marking them.
    /// The rows above it (the last position of a full batch, read again by the next batch in
    /// full) are left to the next batch.
    func write(_ batches: [Batch], fresh: Bool = false) async throws -> Int {
        let shard = options.shard
        let now = SystemClock.nowMS()
        let result: AppendResult? = try await store.writeAsync { ctx in
            var entries: [LogEntry] = []
            for b in batches {
                let key = Self.key(b.stream)
                if fresh {
                    for row in b.rows where row.position <= b.next.position {
                        if let entry = row.entry, shard.owns(row.userID) { entries.append(entry) }
                    }
                } else {
                    // A row at or below the new window start leaves the window in this
                    // transaction (its mark would be pruned below): it is told apart from a second
                    // copy of itself in this batch here, and not marked. Every row read is above
                    // the old window start, so the window moved whenever there is such a row.
                    var taken: Set<SeenRow> = []
                    for row in b.rows {
                        if row.position <= b.next.windowStart {
                            if try ctx.sourceSeen(key, row.position, row.identity) { continue }
                            guard taken.insert(SeenRow(position: row.position, identity: row.identity)).inserted else { continue }
                        } else {
                            guard try ctx.markSourceSeenIfNew(key, row.position, row.identity) else { continue }
                        }
                        if let entry = row.entry, shard.owns(row.userID) { entries.append(entry) }
                    }
                }
                let before = try ctx.sourcePosition(key)
                if before != b.next {
                    try ctx.setSourcePosition(key, b.next)
                    if b.next.windowStart > (before?.windowStart ?? 0) {
                        try ctx.pruneSourceSeen(key, below: b.next.windowStart + 1)
                    }
                }
            }
            return entries.isEmpty ? nil : try ctx.append(entries, now: now)
        }
        guard let result else { return 0 }
        onAppended(result)
        return Int(result.lastPos - result.firstPos + 1)
    }

    struct SeenRow: Hashable {
        var position: Int64
        var identity: String
    }

    // MARK: first start

    /// With no position stored: import the last `backfill` of push actions and the current
    /// receipts, so badges match Synapse's from the first push; then the pushers, after them, so
    /// their cursors start at the head and no history is pushed. Deletions start at the head.
    /// Interrupted, it resumes where it stopped (each batch stores its position).
    func firstStart() async throws {
        let stored = try store.sourcePositions()
        guard stored[Self.key(.pushers)] == nil else { return }
        let now = SystemClock.nowMS()
        let backfillMS = options.backfill.components.seconds * 1000
        for stream in [SynapseStream.pushActions, .receipts] {
            let key = Self.key(stream)
            let head = try await source.query(stream.head, []).first?.first?.int ?? 0
            var position: Int64
            if let p = stored[key] {
                position = p.position
            } else if stream.name == SynapseStream.pushActions.name {
                let since = now - backfillMS
                let first = try await source.query(
                    "SELECT MIN(stream_ordering) FROM events WHERE origin_server_ts >= $1", [.int(since)]).first?.first?.int
                position = min(head, (first ?? head + 1) - 1)
            } else {
                position = 0
            }
            var total = 0
            // Three batches at once: the next one is read while this one is decoded and the one
            // before it written. Writes run one after the other, in order, each storing its
            // position with its rows.
            var reading = try await plan(stream, above: position, upTo: head)
            var writing: Task<Int, Error>?
            do {
                while true {
                    let (reached, full) = try await reading.end()
                    let next = SourcePosition(position: full ? reached : head, windowStart: full ? reached : head)
                    let current = reading
                    // The next batch is under way before this one's rows are awaited.
                    if full { reading = try await plan(stream, above: reached, upTo: head) }
                    let raw = try await current.value.raw
                    let rows = stream.mapRows(raw, now)
                    if let w = writing { total += try await w.value }
                    writing = Task { try await self.write([(stream, rows, next)], fresh: true) }
                    if !full { break }
                }
                if let w = writing { total += try await w.value }
            } catch {
                reading.cancel()
                // A write under way still completes (or fails) in order before this returns.
                _ = try? await writing?.value
                throw error
            }
            logger.info("Synapse follower: imported \(total) \(stream.name) up to \(head)")
        }
        let deleted = Self.key(.deletedPushers)
        if stored[deleted] == nil {
            let head = try await source.query(SynapseStream.deletedPushers.head, []).first?.first?.int ?? 0
            _ = try await write([(.deletedPushers, [], SourcePosition(position: head, windowStart: head))])
        }
    }

    // MARK: running

    /// Polls until nothing is left to read; returns the rows appended. Behind, the next poll
    /// reads while the one before it writes (from the positions that write will store). Writes
    /// go one after the other, in order, each storing its positions with its rows, so a restart
    /// resumes exactly after the last one committed; a row read twice across the overlap (the
    /// trailing window) is told apart inside the later write's transaction.
    public func catchUp(progress: (@Sendable (Progress) -> Void)? = nil) async throws -> Int {
        try await startIfNeeded()
        var total = 0
        var stored = try store.sourcePositions()
        var writing: Writing?
        do {
            while true {
                let (batches, p) = try await read(from: stored, after: writing?.task)
                if let w = writing {
                    writing = nil
                    total += try await finished(w, progress)
                }
                let over = stored
                for b in batches { stored[Self.key(b.stream)] = b.next }
                let w: Writing = (Task { try await self.write(batches, over: over) }, batches, p)
                if p.caughtUp {
                    return total + (try await finished(w, progress))
                }
                writing = w
            }
        } catch {
            // A write under way still completes (or fails) before this returns.
            _ = try? await writing?.task.value
            throw error
        }
    }

    /// Waits for a catch-up's write; records and reports its progress.
    private func finished(_ w: Writing, _ report: (@Sendable (Progress) -> Void)?) async throws -> Int {
        var p = w.progress
        p.appended = try await w.task.value
        recordPositions(w.batches)
        report?(p)
        return p.appended
    }

    /// Follows until the task is cancelled. A failing database is retried with backoff (0.5 s
    /// doubling to 30 s), said once at error level and once more when it is back; what is
    /// already in the log is delivered meanwhile.
    public func run() async {
        var failingSince: Double?
        var backoff = 0.5
        while !Task.isCancelled {
            do {
                _ = try await catchUp()
                if failingSince != nil {
                    logger.info("Synapse follower: \(source.description) is back; following again")
                    failingSince = nil
                    backoff = 0.5
                }
                try await Task.sleep(for: options.pollInterval)
            } catch {
                if Task.isCancelled || error is CancellationError { return }
                errors.increment()
                if failingSince == nil {
                    failingSince = SystemClock.monotonicSeconds()
                    logger.error("Synapse follower: \(source.description) failed (\(error)); retrying with backoff, delivery goes on")
                }
                try? await Task.sleep(for: .milliseconds(Int(backoff * 1000)))
                backoff = min(backoff * 2, 30)
            }
        }
    }
}
