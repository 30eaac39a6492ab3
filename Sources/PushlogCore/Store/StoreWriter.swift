import LMDB
#if canImport(Glibc)
import Glibc
#endif

/// The one thread that owns every write transaction of a store. Callers hand it closures; it
/// runs all that are waiting in one transaction (each in a child transaction, so one caller's
/// error undoes only its own writes) and commits them with one fsync: group commit.
///
/// A closure may run more than once (when the map is full the whole group is retried after the
/// map grows), so it must do its work through the transaction only.
final class StoreWriter: @unchecked Sendable {
    private let env: Environment
    private var cond = pthread_cond_t()
    private var condMutex = pthread_mutex_t()
    private var queue: [Job] = []
    /// Whether ``queue`` holds a job that is not ``Job/lazy``, and one that is.
    private var eagerQueued = false
    private var lazyQueued = false
    /// When the oldest queued lazy job was queued (CLOCK_MONOTONIC, ns).
    private var oldestLazy: UInt64 = 0
    /// How long a queue of lazy jobs only may wait for company before it is committed.
    let lazyDelayNS: UInt64
    private var stopping = false
    private var thread: pthread_t?
    /// Group commits done, and jobs they carried (for stats and tests).
    private(set) var commits = 0
    private(set) var jobsCommitted = 0

    final class Job: @unchecked Sendable {
        let body: (Transaction) throws -> Any
        var result: Result<Any, Error>?
        let done: @Sendable (Result<Any, Error>) -> Void
        /// A job nobody waits for in a hurry (cursor advances after pushes): it may wait up to
        /// the writer's lazy delay, so that many of them share one commit and its fsync. Any
        /// other job commits at once and takes the waiting lazy ones with it.
        let lazy: Bool
        init(body: @escaping (Transaction) throws -> Any, lazy: Bool = false,
             done: @escaping @Sendable (Result<Any, Error>) -> Void) {
            self.body = body
            self.lazy = lazy
            self.done = done
        }
    }

    /// Called on the writer thread after each write transaction, committed or not.
    private let afterTransaction: @Sendable () -> Void
    /// The positions appended, published on commit.
    private let own: OwnAppends

    init(env: Environment, lazyDelay: Duration, own: OwnAppends = OwnAppends(),
         afterTransaction: @escaping @Sendable () -> Void = {}) {
        self.env = env
        self.own = own
        self.afterTransaction = afterTransaction
        let (seconds, attoseconds) = lazyDelay.components
        lazyDelayNS = UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(&cond, &attributes)
        pthread_condattr_destroy(&attributes)
        pthread_mutex_init(&condMutex, nil)
        let box = Unmanaged.passRetained(self)
        var t = pthread_t()
        pthread_create(&t, nil, { arg in
            let writer = Unmanaged<StoreWriter>.fromOpaque(arg!).takeRetainedValue()
            LMDBThread.name("pushlog-writer")
            writer.run()
            return nil
        }, box.toOpaque())
        thread = t
    }

    /// Stops the thread once the queue is drained; waits for it.
    func stop() {
        pthread_mutex_lock(&condMutex)
        stopping = true
        pthread_cond_signal(&cond)
        pthread_mutex_unlock(&condMutex)
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    func enqueue(_ job: Job) {
        pthread_mutex_lock(&condMutex)
        precondition(!stopping, "store writer used after close")
        // A lazy job joining others needs no wake-up: the writer is already timing the wait.
        let signal = !job.lazy || !eagerQueued && queue.isEmpty
        if job.lazy {
            if !lazyQueued { oldestLazy = Self.monotonicNS() }
            lazyQueued = true
        } else {
            eagerQueued = true
        }
        queue.append(job)
        if signal { pthread_cond_signal(&cond) }
        pthread_mutex_unlock(&condMutex)
    }

    /// Runs `body` in the next group commit and waits for the commit (blocking this thread).
    func write<T>(_ body: @escaping (Transaction) throws -> T) throws -> T {
        let result = BlockingResult()
        enqueue(Job(body: { try body($0) }, done: { result.set($0) }))
        return try result.wait().get() as! T
    }

    /// Runs `body` in the next group commit; returns once it is committed.
    func write<T: Sendable>(_ body: @escaping (Transaction) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, Error>) in
            enqueue(Job(body: { try body($0) }, done: { r in
                switch r {
                case .success(let v): c.resume(returning: v as! T)
                case .failure(let e): c.resume(throwing: e)
                }
            }))
        }
    }

    private func run() {
        while true {
            pthread_mutex_lock(&condMutex)
            while true {
                if queue.isEmpty {
                    if stopping { break }
                    pthread_cond_wait(&cond, &condMutex)
                    continue
                }
                if eagerQueued || stopping || lazyDelayNS == 0 { break }
                // Only lazy jobs: wait for company until the oldest has waited long enough.
                let deadline = oldestLazy + lazyDelayNS
                guard Self.monotonicNS() < deadline else { break }
                var until = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
                pthread_cond_timedwait(&cond, &condMutex, &until)
            }
            if queue.isEmpty && stopping {
                pthread_mutex_unlock(&condMutex)
                return
            }
            let jobs = queue
            queue.removeAll(keepingCapacity: true)
            eagerQueued = false
            lazyQueued = false
            pthread_mutex_unlock(&condMutex)
            commit(jobs)
        }
    }

    private static func monotonicNS() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    private func commit(_ jobs: [Job]) {
        do {
            try env.write { txn in
                own.transactionEnded(committed: false)  // a map-full retry starts again
                if jobs.count == 1 {
                    jobs[0].result = .success(try jobs[0].body(txn))
                    return
                }
                for job in jobs {
                    let mark = own.mark
                    do {
                        job.result = .success(try txn.nested { try job.body($0) })
                    } catch let e as LMDBError where e.isMapFull {
                        throw e  // the whole group is retried after the map grows
                    } catch {
                        own.rollback(to: mark)
                        job.result = .failure(error)
                    }
                }
            }
            own.transactionEnded(committed: true)
            afterTransaction()  // before anyone hears of the commit
            commits += 1
            jobsCommitted += jobs.count
            for job in jobs { job.done(job.result!) }
        } catch {
            own.transactionEnded(committed: false)
            afterTransaction()
            if jobs.count == 1 {
                jobs[0].done(.failure(error))
            } else {
                // The group failed as a whole (commit error): run each alone so one bad job
                // cannot fail the others.
                for job in jobs { commit([job]) }
            }
        }
    }
}

/// One job's result, handed from the writer thread to a thread blocked until it comes.
///
/// A pthread mutex and condition variable, as the writer's own queue: Synchronization has no
/// condition variable, and these two are the only pthread locks above the C wrappers.
final class BlockingResult: @unchecked Sendable {
    private var m = pthread_mutex_t()
    private var c = pthread_cond_t()
    private var value: Result<Any, Error>?

    init() {
        pthread_mutex_init(&m, nil)
        pthread_cond_init(&c, nil)
    }

    deinit {
        pthread_mutex_destroy(&m)
        pthread_cond_destroy(&c)
    }

    func set(_ r: Result<Any, Error>) {
        pthread_mutex_lock(&m)
        value = r
        pthread_cond_signal(&c)
        pthread_mutex_unlock(&m)
    }

    /// Blocks the calling thread until ``set(_:)``.
    func wait() -> Result<Any, Error> {
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        while value == nil { pthread_cond_wait(&c, &m) }
        return value!
    }
}
