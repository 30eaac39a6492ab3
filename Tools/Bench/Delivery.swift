// Delivery figures: Pushlog's pool posting to nginx on 127.0.0.1 beside the raw libcurl-multi C
// client posting the same bodies to the same nginx (Tools/nginx/gateway.sh must be running).
import Curl
import Foundation
import Logging
import Metrics
import Prometheus
import PushlogCore
import PushlogRuntime

let gatewayURL = stringOption("gateway", "http://127.0.0.1:18690/_matrix/push/v1/notify")
/// The nginx gateway runs on 127.0.0.1, which `push.ip_range_blacklist` blocks by default.
let benchGatewayAllowed = [IPRange("127.0.0.0/8")!]

func quietLogger() -> Logger {
    var l = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }
    l.logLevel = .critical
    return l
}

func populateDelivery(_ dir: String, pushers: Int, perPusher: Int) {
    let store = try! Store(dataDir: dir, options: StoreOptions(durability: .nometasync, mapSize: 4 << 30))
    var batch: [LogEntry] = []
    for i in 0..<pushers {
        batch.append(.pusherSet(PusherConfig(id: PusherID(userID: userID(i), appID: "com.example.app", pushkey: "pushkey-\(i)"),
                                             kind: .http, data: ["url": .string(gatewayURL)], append: true,
                                             createdTS: 1_732_900_000_000)))
    }
    try! store.append(batch)
    batch.removeAll()
    for k in 0..<perPusher {
        for i in 0..<pushers {
            batch.append(.notification(sampleNotification(k * pushers + i, users: pushers)))
        }
        if batch.count >= 10_000 { try! store.append(batch); batch.removeAll(keepingCapacity: true) }
    }
    if !batch.isEmpty { try! store.append(batch) }
    store.close()
}

final class Latencies: @unchecked Sendable {
    let lock = NSLock()
    var values: [Double] = []
    var count = 0
    func add(_ v: Double) { lock.lock(); values.append(v); count += 1; lock.unlock() }
    func percentile(_ p: Double) -> Double {
        lock.lock(); defer { lock.unlock() }
        let s = values.sorted()
        return s.isEmpty ? 0 : s[min(s.count - 1, Int(Double(s.count) * p))]
    }
}

func cpuSeconds() -> Double {
    var r = rusage()
    getrusage(__rusage_who_t(0), &r)  // RUSAGE_SELF
    return Double(r.ru_utime.tv_sec) + Double(r.ru_utime.tv_usec) / 1e6 + Double(r.ru_stime.tv_sec) + Double(r.ru_stime.tv_usec) / 1e6
}

/// Child process: open the store, start the pool, wait until every pending push is delivered.
func deliverChild(_ dir: String, concurrency: Int) async {
    // BENCH_METRICS=prometheus: the metrics backend `serve` runs with (its registry), so that
    // their cost per push is in the figures; by default no backend (the metrics are no-ops).
    if ProcessInfo.processInfo.environment["BENCH_METRICS"] == "prometheus" {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: PrometheusCollectorRegistry()))
    }
    let t0 = now()
    let cpu0 = cpuSeconds()
    let lazyMS = Int(ProcessInfo.processInfo.environment["BENCH_LAZY_MS"] ?? "10")!
    let store = try! Store(dataDir: dir, options: StoreOptions(durability: .nometasync, lazyCommitDelay: .milliseconds(lazyMS)))
    // As `serve` does (one connection per request in flight), unless BENCH_CONNECTIONS says.
    let connections = ProcessInfo.processInfo.environment["BENCH_CONNECTIONS"].flatMap(Int.init) ?? PushConfig().maxInFlightPerHost
    let http = try! CurlClient(maxConnectionsPerHost: connections, connectionCacheSize: connections)
    let processes = BackgroundProcesses(logger: quietLogger())
    var config = PushConfig()
    if let ceiling = ProcessInfo.processInfo.environment["BENCH_CEILING"].flatMap(Int.init) { config.maxInFlightPerHost = ceiling }
    config.addressPolicy.allowed = benchGatewayAllowed
    config.startupConcurrency = concurrency
    if let threads = ProcessInfo.processInfo.environment["BENCH_DELIVERY_THREADS"].flatMap(Int.init) { config.deliveryThreads = threads }
    config.maxAgeMS = 0
    let pool = PusherPool(store: store, http: http, processes: processes, config: config, logger: quietLogger())
    let delivered = Latencies()
    pool.onDelivered = { _, latency in delivered.add(latency) }
    await pool.start().value
    await pool.waitUntilIdle()
    let t = now() - t0
    let cpu = cpuSeconds() - cpu0
    let stats = processes.snapshot()["httppush.process"]
    let loopCPU = (stats?.userCPUSeconds ?? 0) + (stats?.systemCPUSeconds ?? 0)
    let r = rss()
    print("seconds=\(t) pushes=\(delivered.count) loops=\(stats?.startCount ?? 0) cpu_seconds=\(cpu) loop_cpu_seconds=\(loopCPU) hwm_kb=\(r.hwm) anon_kb=\(r.anon)")
    await pool.shutdown()
    http.shutdown()
    store.close()
}

func benchDeliver() {
    let pushers = option("pushers", 1_000)
    let per = option("per", 100)
    let total = pushers * per
    let runs = option("runs", 3)
    let threads = ProcessInfo.processInfo.environment["BENCH_DELIVERY_THREADS"].flatMap(Int.init) ?? PushConfig.defaultDeliveryThreads
    let ourInFlight = 32  // the raw client's wider setting (Pushlog's own is its adaptive limit)
    print("## Delivery throughput: \(pushers) pushers × \(per) notifications to nginx on 127.0.0.1\n")
    print("Pushlog: \(threads) delivery thread(s) sharing the host's adaptive limit (ceiling push.max_in_flight_per_host, \(PushConfig().maxInFlightPerHost)). Raw client: the better of 16 and \(ourInFlight) in flight, each run.\n")
    let bodyFile = scratch + "/body.json"
    let body = GatewayPayload.notification(sampleNotification(1, users: 1),
                                           pusher: PusherConfig(id: PusherID(userID: userID(1), appID: "com.example.app", pushkey: "pushkey-1"),
                                                                kind: .http, data: ["url": .string(gatewayURL)], createdTS: 1_732_900_000_000),
                                           badge: 1, options: .init())
    try? FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    _ = FileManager.default.createFile(atPath: bodyFile, contents: Data(body.serialized()))
    var ours: [Double] = [], raw: [Double] = [], ourCPU: [Double] = [], loopCPU: [Double] = [], rawCPU: [Double] = []
    for _ in 0..<runs {
        let dir = fresh("deliver")
        populateDelivery(dir, pushers: pushers, perPusher: per)
        let r = run(CommandLine.arguments[0], ["deliver-child", dir, "--concurrency", "\(pushers)"])
        precondition(Int(r["pushes"]!)! == total, "delivered \(r["pushes"]!) of \(total)")
        ours.append(Double(total) / Double(r["seconds"]!)!)
        ourCPU.append(Double(r["cpu_seconds"]!)! / Double(total) * 1e6)
        loopCPU.append(Double(r["loop_cpu_seconds"]!)! / Double(total) * 1e6)
        var c = run(baselineBin + "/curl_multi_post", [gatewayURL, "\(total)", "16", bodyFile])
        if ourInFlight != 16 {
            let wider = run(baselineBin + "/curl_multi_post", [gatewayURL, "\(total)", "\(ourInFlight)", bodyFile])
            if Double(wider["rate"]!)! > Double(c["rate"]!)! { c = wider }
        }
        raw.append(Double(c["rate"]!)!)
        rawCPU.append(Double(c["cpu_us_per_post"]!)!)
        FileHandle.standardError.write("run \(ours.count): pushlog \(fmt(ours.last!)) pushes/s, raw \(fmt(raw.last!)) posts/s (\(c["posts"] ?? "?") posts, \(fmt(ours.last! / raw.last! * 100, 1))%)\n".data(using: .utf8)!)
    }
    table(["", "pushlog pool", "raw libcurl multi (best of 16 / \(ourInFlight) in flight)", "ratio"], [
        ["pushes/s (median of \(runs))", fmt(median(ours)), fmt(median(raw)), fmt(median(ours) / median(raw) * 100, 1) + "%"],
        ["CPU µs per push, whole process", fmt(median(ourCPU), 1), fmt(median(rawCPU), 1), fmt(median(ourCPU) / median(rawCPU), 2) + "×"],
        ["CPU µs per push, httppush.process counters", fmt(median(loopCPU), 1), "", ""],
    ])
    print("\nPushlog's time runs from process start (store open, boot check) until every push is acknowledged and its cursor committed (nometasync); it includes building each body and computing each badge.\n")
}

func benchBootDeliver() {
    let sizes = args.contains("--quick") ? [100_000] : [100_000, 1_000_000]
    let runs = option("runs", 3)
    print("## Boot to delivered: pushers with 1% pending, from process start until every pending push reached nginx\n")
    var rows: [[String]] = []
    for size in sizes {
        let dir = fresh("bootdeliver-\(size)")
        populate(dir, pushers: size, pendingPercent: 1, url: gatewayURL)
        var times: [Double] = []
        var last: [String: String] = [:]
        for r in 0..<runs {
            if r > 0 { rewindAll(dir) }
            last = run(CommandLine.arguments[0], ["deliver-child", dir, "--concurrency", "10"])
            precondition(Int(last["pushes"]!)! == size / 100, "delivered \(last["pushes"]!) of \(size / 100)")
            times.append(Double(last["seconds"]!)!)
        }
        rows.append(["\(size)", "\(size / 100)", fmt(median(times) * 1000, 0), fmt(Double(last["hwm_kb"]!)! / 1024, 1),
                     fmt(Double(last["anon_kb"]!)! / 1024, 1)])
    }
    table(["pushers", "pending", "start → all delivered (ms)", "peak RSS incl. mapped file (MiB)", "anonymous RSS at end (MiB)"], rows)
    print("\nAnchor: Synapse needs ~43 s and 341 MB to start 100,000 pushers on this machine kind.\n")
}

/// Puts every cursor back by one notification so the same pushes are pending again.
func rewindAll(_ dir: String) {
    let store = try! Store(dataDir: dir)
    var users: [String] = []
    try! store.read { view in try view.forEachPusherState { s in
        if s.head > 0 { users.append(s.config.id.userID) }
        return true
    } }
    for u in users {
        let head = try! store.read { view in try view.head(user: u) }
        try! store.rewind(toPos: head, filter: .init(userID: u))
    }
    store.close()
}

func benchLatency() async {
    let pushers = option("pushers", 1_000)
    let rate = option("rate", 1_000)
    let seconds = option("seconds", 10)
    let dir = fresh("latency")
    populateDelivery(dir, pushers: pushers, perPusher: 0)
    let store = try! Store(dataDir: dir, options: StoreOptions(durability: .nometasync))
    let http = try! CurlClient()
    let processes = BackgroundProcesses(logger: quietLogger())
    var config = PushConfig()
    config.addressPolicy.allowed = benchGatewayAllowed
    config.maxAgeMS = 0  // the sample notifications carry an old received_ts
    let pool = PusherPool(store: store, http: http, processes: processes, config: config, logger: quietLogger())
    let lat = Latencies()
    pool.onDelivered = { _, l in lat.add(l) }
    await pool.start().value
    // A steady stream: every millisecond tick appends what is due, one commit per tick.
    let total = rate * seconds
    let t0 = now()
    var sent = 0
    while sent < total {
        let due = min(total, Int((now() - t0) * Double(rate)) + 1)
        if due > sent {
            let batch = (sent..<due).map { LogEntry.notification(sampleNotification($0, users: pushers)) }
            let r = try! await store.appendAsync(batch)
            pool.onNewNotifications(users: r.notifiedUsers)
            sent = due
        }
        try? await Task.sleep(for: .milliseconds(1))
    }
    await pool.waitUntilIdle()
    print("## Latency from append to the gateway's answer at a steady \(rate) notifications/s (\(seconds) s, \(pushers) pushers, durable nometasync appends)\n")
    table(["pushes", "p50 (ms)", "p90 (ms)", "p99 (ms)", "max (ms)"],
          [["\(lat.count)", fmt(lat.percentile(0.5) * 1000, 1), fmt(lat.percentile(0.9) * 1000, 1),
            fmt(lat.percentile(0.99) * 1000, 1), fmt(lat.percentile(1.0) * 1000, 1)]])
    print("\nLatency is measured from the entry's append time (ms resolution) to the acknowledged push.\n")
    await pool.shutdown()
    http.shutdown()
    store.close()
}

/// Ingest through `POST /v1/notifications` of a running `pushlog serve` (release), 16 requests
/// in flight, batches of 100 and of 1, beside `pushlog append` of the same notifications.
/// `--token T` runs the servers with `api.token` and sends it; `--baseline PATH` runs another
/// `pushlog` binary (an earlier commit's) the same way in the same invocation, alternating with
/// this one run by run, and prints each path's median over `--runs N` and the ratio.
func benchIngest() async {
    let pushlog = stringOption("pushlog", here.deletingLastPathComponent().appendingPathComponent(".build/release/pushlog").path)
    let baseline = stringOption("baseline", "")
    let token = stringOption("token", "")
    let runs = max(1, Int(stringOption("runs", "1")) ?? 1)
    let port = 18_795
    let http = try! CurlClient()
    func line(_ i: Int) -> JSON {
        let n = sampleNotification(i, users: 10_000)
        return .object(["user_id": .string(n.userID), "room_id": .string(n.roomID), "event_id": .string(n.eventID),
                        "stream_ordering": .int(n.streamOrdering), "actions": .array(n.actions),
                        "event": .object(n.event), "context": .object(n.context!)])
    }
    let headers = token.isEmpty ? ["Content-Type": "application/json"]
        : ["Content-Type": "application/json", "Authorization": "Bearer \(token)"]
    /// One run: a fresh server of `binary`, `total` notifications in batches of `batch`; notifications/s.
    func once(_ binary: String, batch: Int, total: Int, bodies: [[UInt8]]) async -> Double {
        let dir = fresh("ingest-\(batch)")
        let server = Process()
        server.executableURL = URL(fileURLWithPath: binary)
        server.arguments = ["serve", "--data-dir", dir, "--listen", "127.0.0.1:\(port)"]
        if !token.isEmpty { server.environment = ProcessInfo.processInfo.environment.merging(["PUSHLOG_API_TOKEN": token]) { $1 } }
        let err = Pipe()
        server.standardError = err
        try! server.run()
        var text = ""
        while !text.contains("pushlog serve: listening") {
            let chunk = err.fileHandleForReading.availableData
            precondition(!chunk.isEmpty, "\(binary) did not start: \(text)")
            text += String(decoding: chunk, as: UTF8.self)
        }
        let drain = err.fileHandleForReading
        Thread.detachNewThread { while !drain.availableData.isEmpty {} }
        let t0 = now()
        await withTaskGroup(of: Void.self) { group in
            let next = Ticket()
            for _ in 0..<16 {
                group.addTask {
                    while true {
                        let i = next.take()
                        guard i < bodies.count else { return }
                        let r = try! await http.post("http://127.0.0.1:\(port)/v1/notifications", body: bodies[i],
                                                     headers: headers, timeout: .seconds(60))
                        precondition(r.status == 200, "status \(r.status)")
                    }
                }
            }
        }
        let rate = Double(total) / (now() - t0)
        kill(server.processIdentifier, SIGTERM)
        server.waitUntilExit()
        return rate
    }
    var rows: [[String]] = []
    for (batch, total) in [(100, 100_000), (1, 20_000)] {
        let bodies: [[UInt8]] = stride(from: 0, to: total, by: batch).map { start in
            JSON.object(["notifications": .array((start..<min(total, start + batch)).map(line))]).serialized()
        }
        var mine: [Double] = [], theirs: [Double] = []
        for run in 1...runs {
            mine.append(await once(pushlog, batch: batch, total: total, bodies: bodies))
            if !baseline.isEmpty { theirs.append(await once(baseline, batch: batch, total: total, bodies: bodies)) }
            progress("ingest, batches of \(batch): runs", run, runs)
        }
        let path = "POST /v1/notifications, batches of \(batch)"
        if baseline.isEmpty {
            rows.append([path, "\(total)", fmt(median(mine))])
        } else {
            rows.append([path, "\(total)", fmt(median(mine)), fmt(median(theirs)), String(format: "%.3f", median(mine) / median(theirs))])
        }
    }
    http.shutdown()
    // The store's own rate through the CLI, same notifications.
    let file = scratch + "/ingest.jsonl"
    var text: [UInt8] = []
    for i in 0..<100_000 { line(i).write(to: &text); text.append(0x0A) }
    _ = FileManager.default.createFile(atPath: file, contents: Data(text))
    let p = Process()
    p.executableURL = URL(fileURLWithPath: pushlog)
    p.arguments = ["append", "notifications", file, "--data-dir", fresh("ingest-cli")]
    p.standardOutput = FileHandle.nullDevice
    let t0 = now()
    try! p.run()
    p.waitUntilExit()
    rows.append(["pushlog append (one process, commits of 10,000)", "100000", fmt(100_000 / (now() - t0))])
    print("## Ingest: notifications per second into a durable (sync) store, 16 requests in flight\(token.isEmpty ? "" : ", with api.token")\n")
    if baseline.isEmpty {
        table(["path", "notifications", "notifications/s"], rows)
    } else {
        rows[rows.count - 1] += ["", ""]
        table(["path", "notifications", "notifications/s (median of \(runs))", "baseline \(baseline)", "ratio"], rows)
    }
    print()
}

/// Hands out 0, 1, 2, … to concurrent senders.
final class Ticket: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func take() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value - 1
    }
}

/// `pushlog serve` itself: from process start until every pending push reached nginx (read from
/// its /metrics), and its peak RSS, for 100,000 and 1,000,000 pushers with 1% pending.
func benchServeBoot() async {
    let pushlog = stringOption("pushlog", here.deletingLastPathComponent().appendingPathComponent(".build/release/pushlog").path)
    let sizes = args.contains("--quick") ? [100_000] : [100_000, 1_000_000]
    let port = 18_796
    let http = try! CurlClient()
    var rows: [[String]] = []
    for size in sizes {
        let dir = fresh("serveboot-\(size)")
        populate(dir, pushers: size, pendingPercent: 1, url: gatewayURL)
        let pending = size / 100
        var times: [Double] = [], hwm: [Double] = []
        for r in 0..<option("runs", 3) {
            if r > 0 { rewindAll(dir) }
            let server = Process()
            server.executableURL = URL(fileURLWithPath: pushlog)
            server.arguments = ["serve", "--data-dir", dir, "--listen", "127.0.0.1:\(port)"]
            server.environment = ["PUSHLOG_PUSH_MAX_AGE": "0", "PUSHLOG_LOG_LEVEL": "warning",
                                  "PUSHLOG_PUSH_IP_RANGE_WHITELIST": "127.0.0.0/8"]
            server.standardError = FileHandle.nullDevice
            let t0 = now()
            try! server.run()
            var done = false
            while !done {
                if let r = try? await http.send(method: "GET", url: "http://127.0.0.1:\(port)/metrics", timeout: .seconds(5)) {
                    let text = String(decoding: r.body, as: UTF8.self)
                    for line in text.split(separator: "\n") where line.hasPrefix("pushlog_http_pushes_processed_total ") {
                        done = (Double(line.split(separator: " ")[1]) ?? 0) >= Double(pending)
                    }
                }
                if !done { try? await Task.sleep(for: .milliseconds(5)) }
            }
            times.append(now() - t0)
            let status = (try? String(contentsOfFile: "/proc/\(server.processIdentifier)/status", encoding: .utf8)) ?? ""
            for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
                hwm.append(Double(line.split(separator: " ", omittingEmptySubsequences: true)[1])! / 1024)
            }
            kill(server.processIdentifier, SIGTERM)
            server.waitUntilExit()
        }
        rows.append(["\(size)", "\(pending)", fmt(median(times) * 1000), fmt(median(hwm), 1)])
    }
    http.shutdown()
    print("## `pushlog serve`: process start → every pending push at nginx (1% pending)\n")
    table(["pushers", "pending", "start → all delivered (ms, median)", "peak RSS incl. mapped file (MiB)"], rows)
    print("\nMeasured from launching the process to the first /metrics scrape that shows every pending push processed (polled every 5 ms). Synapse: ~43 s and 341 MB for 100,000.\n")
}

/// `batch-client`: the HTTP client's batch channel alone (no store, no engine) posting the same
/// body N times with 16 in flight, beside the raw C client: what the Curl wrapper costs.
func benchBatchClient() {
    let n = option("n", 100_000)
    let inFlight = option("in-flight", 16)
    let body = Array((try? Data(contentsOf: URL(fileURLWithPath: scratch + "/body.json"))) ?? Data(repeating: 0x20, count: 574))
    let http = try! CurlClient(maxConnectionsPerHost: 16)
    final class State: @unchecked Sendable {
        var started = 0, completed = 0, failed = 0
        let done = DispatchSemaphore(value: 0)
    }
    let state = State()
    let t0 = now()
    let cpu0 = cpuSeconds()
    let batcher = http.makeBatcher { batch in
        for c in batch.completions {
            state.completed += 1
            if case .success(let r) = c.result, r.status == 200 {} else { state.failed += 1 }
        }
        while state.started < n, state.started - state.completed < inFlight {
            state.started += 1
            batch.start(PostRequest(tag: UInt64(state.started), url: gatewayURL, body: body,
                                    headers: ["Content-Type": "application/json"], timeout: .seconds(30)))
        }
        if state.completed == n { state.done.signal() }
    }
    batcher.wake()
    state.done.wait()
    let t = now() - t0
    let cpu = cpuSeconds() - cpu0
    print("posts=\(n) seconds=\(t) rate=\(Double(n) / t) cpu_us_per_post=\(cpu / Double(n) * 1e6) failed=\(state.failed)")
    http.shutdown()
}
