import Dispatch
import Logging
import Metrics
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs work in the background, named and accounted, the way Synapse's
/// `run_as_background_process` does (reference §5), without its quirks.
///
/// Every run gets an instance name, `name-k` with k counted per name from 0, which is on every
/// log line it writes; its own executor charges the CPU it uses (user and system, read from the
/// thread's rusage around each job) to its name; an error it throws is logged once at error
/// level and counted, never propagated and never lost. A process starts from a fresh context:
/// it inherits neither the task-locals nor the priority of whoever started it.
///
/// The trap: code inside a process that hops to an actor runs on that actor's executor, and that
/// time is not charged. Keep heavy work out of actors.
public final class BackgroundProcesses: Sendable {
    public let logger: Logger
    private let state = LockedState()

    public init(logger: Logger) {
        self.logger = logger
    }

    /// Starts `body` as a background process called `name`; returns at once.
    @discardableResult
    public func run(_ name: String, metadata: Logger.Metadata = [:],
                    _ body: @escaping @Sendable (BackgroundProcessContext) async throws -> Void) -> Task<Void, Never> {
        let account = state.account(for: name)
        let instance = "\(name)-\(account.nextInstance())"
        var log = logger
        log[metadataKey: "process"] = .string(instance)
        for (k, v) in metadata { log[metadataKey: k] = v }
        let context = BackgroundProcessContext(name: name, instance: instance, logger: log, account: account)
        let executor = AccountingExecutor(account: account)
        account.started()
        // Task.detached: no inherited task-locals, priority or actor context.
        return Task.detached {
            await withTaskExecutorPreference(executor) {
                defer {
                    // Charge the running job now: whoever awaits this task may read the counters
                    // before the executor's own charge after the job.
                    AccountingExecutor.chargeRunningJob()
                    account.finished()
                }
                do {
                    try await body(context)
                } catch is CancellationError {
                    log.debug("Background process '\(name)' was cancelled")
                } catch {
                    account.failed()
                    log.error("Background process '\(name)' threw an exception: \(error)")
                }
            }
        }
    }

    /// Starts a process called `name` that is not a Swift task (a state machine driven by an
    /// event loop, say): counted and named like ``run(_:metadata:_:)``; its CPU is charged with
    /// ``BackgroundProcessContext/chargeCPU(user:system:)``; it must be ended exactly once with
    /// ``end(_:error:)``.
    public func begin(_ name: String) -> BackgroundProcessContext {
        let account = state.account(for: name)
        let instance = "\(name)-\(account.nextInstance())"
        var log = logger
        log[metadataKey: "process"] = .string(instance)
        account.started()
        return BackgroundProcessContext(name: name, instance: instance, logger: log, account: account)
    }

    /// Ends a process started with ``begin(_:)``. An error other than cancellation is logged
    /// once and counted, as for a task.
    public func end(_ context: BackgroundProcessContext, error: (any Error)? = nil) {
        if let error {
            if error is CancellationError {
                context.logger.debug("Background process '\(context.name)' was cancelled")
            } else {
                context.account.failed()
                context.logger.error("Background process '\(context.name)' threw an exception: \(error)")
            }
        }
        context.account.finished()
    }

    /// The CPU the calling thread has used so far (user, system), for charging a share of it
    /// with ``BackgroundProcessContext/chargeCPU(user:system:)``.
    public static func threadCPU() -> (user: Double, system: Double) { PushlogRuntime.threadCPU() }

    /// The counters of `name`, for charging work done outside any one process run.
    func account(for name: String) -> ProcessAccount { state.account(for: name) }

    /// A snapshot of the accounting of every name seen so far.
    public func snapshot() -> [String: BackgroundProcessStats] { state.snapshot() }
}

/// What a running process knows about itself.
public struct BackgroundProcessContext: Sendable {
    /// The kind of process, e.g. `httppush.process`.
    public let name: String
    /// This run, e.g. `httppush.process-17`.
    public let instance: String
    /// Carries `process` metadata: log through it.
    public let logger: Logger
    let account: ProcessAccount

    /// Charges CPU seconds to this process's name (for processes that are not Swift tasks).
    public func chargeCPU(user: Double, system: Double) { account.cpu(user: user, system: system) }

    /// Records one store transaction and its duration against this process's name.
    public func recordTransaction(seconds: Double) { account.transaction(seconds: seconds) }

    /// Times `body` as one store transaction.
    public func transaction<T>(_ body: () throws -> T) rethrows -> T {
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { account.transaction(seconds: Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
        return try body()
    }
}

public struct BackgroundProcessStats: Sendable, Equatable {
    public var startCount: Int
    public var inFlight: Int
    public var failures: Int
    public var userCPUSeconds: Double
    public var systemCPUSeconds: Double
    public var transactions: Int
    public var transactionSeconds: Double
}

/// Per-name counters, mirrored into swift-metrics under the contract's names.
final class ProcessAccount: Sendable {
    let name: String
    private struct Counts {
        var instances = 0
        var stats = BackgroundProcessStats(startCount: 0, inFlight: 0, failures: 0, userCPUSeconds: 0,
                                           systemCPUSeconds: 0, transactions: 0, transactionSeconds: 0)
    }
    private let counts = Mutex(Counts())
    private let startCounter: Counter
    private let inFlightGauge: Gauge
    private let failureCounter: Counter
    private let utime: FloatingPointCounter
    private let stime: FloatingPointCounter
    private let txnCounter: Counter
    private let txnSeconds: FloatingPointCounter

    init(name: String) {
        self.name = name
        let dims = [("name", name)]
        startCounter = Counter(label: "pushlog_background_process_start_count", dimensions: dims)
        inFlightGauge = Gauge(label: "pushlog_background_process_in_flight_count", dimensions: dims)
        failureCounter = Counter(label: "pushlog_background_process_failures_total", dimensions: dims)
        utime = FloatingPointCounter(label: "pushlog_background_process_ru_utime_seconds", dimensions: dims)
        stime = FloatingPointCounter(label: "pushlog_background_process_ru_stime_seconds", dimensions: dims)
        txnCounter = Counter(label: "pushlog_background_process_db_txn_count", dimensions: dims)
        txnSeconds = FloatingPointCounter(label: "pushlog_background_process_db_txn_duration_seconds", dimensions: dims)
    }

    func nextInstance() -> Int {
        counts.withLock { c in
            defer { c.instances += 1 }
            return c.instances
        }
    }

    func started() {
        let n = counts.withLock { c in c.stats.startCount += 1; c.stats.inFlight += 1; return c.stats.inFlight }
        startCounter.increment()
        inFlightGauge.record(n)
    }

    func finished() {
        let n = counts.withLock { c in c.stats.inFlight -= 1; return c.stats.inFlight }
        inFlightGauge.record(n)
    }

    func failed() {
        counts.withLock { $0.stats.failures += 1 }
        failureCounter.increment()
    }

    func cpu(user: Double, system: Double) {
        counts.withLock { c in c.stats.userCPUSeconds += user; c.stats.systemCPUSeconds += system }
        if user > 0 { utime.increment(by: user) }
        if system > 0 { stime.increment(by: system) }
    }

    func transaction(seconds: Double) {
        counts.withLock { c in c.stats.transactions += 1; c.stats.transactionSeconds += seconds }
        txnCounter.increment()
        txnSeconds.increment(by: seconds)
    }

    var snapshot: BackgroundProcessStats { counts.withLock { $0.stats } }
}

final class LockedState: Sendable {
    private let accounts = Mutex<[String: ProcessAccount]>([:])

    func account(for name: String) -> ProcessAccount {
        accounts.withLock { accounts in
            if let a = accounts[name] { return a }
            let a = ProcessAccount(name: name)
            accounts[name] = a
            return a
        }
    }

    func snapshot() -> [String: BackgroundProcessStats] {
        accounts.withLock { $0.mapValues(\.snapshot) }
    }
}

/// Runs a process's jobs on Dispatch's shared pool and charges the thread CPU each job used
/// (from `getrusage(RUSAGE_THREAD)`, so user and system time apart) to the process's name.
final class AccountingExecutor: TaskExecutor, @unchecked Sendable {
    let account: ProcessAccount

    init(account: ProcessAccount) { self.account = account }

    /// The job running on this thread: its account and the thread's CPU times when it was last charged.
    final class RunningJob {
        let account: ProcessAccount
        var user: Double
        var system: Double
        init(account: ProcessAccount, user: Double, system: Double) {
            self.account = account
            self.user = user
            self.system = system
        }
    }

    nonisolated(unsafe) static var key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        DispatchQueue.global().async {
            let (u, s) = threadCPU()
            let running = RunningJob(account: self.account, user: u, system: s)
            let box = Unmanaged.passRetained(running)
            pthread_setspecific(Self.key, box.toOpaque())
            unowned.runSynchronously(on: self.asUnownedTaskExecutor())
            Self.chargeRunningJob()
            pthread_setspecific(Self.key, nil)
            box.release()
        }
    }

    /// Charges the CPU the current thread's job used since it was last charged.
    static func chargeRunningJob() {
        guard let raw = pthread_getspecific(key) else { return }
        let running = Unmanaged<RunningJob>.fromOpaque(raw).takeUnretainedValue()
        let (u, s) = threadCPU()
        running.account.cpu(user: u - running.user, system: s - running.system)
        running.user = u
        running.system = s
    }
}

func threadCPU() -> (user: Double, system: Double) {
    var r = rusage()
    getrusage(rusageThread, &r)
    return (seconds(r.ru_utime), seconds(r.ru_stime))
}

@inline(__always)
private func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }

/// `RUSAGE_THREAD` (1) is only declared under _GNU_SOURCE, which Swift's Glibc module lacks.
private let rusageThread = __rusage_who_t(1)
