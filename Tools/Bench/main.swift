// pushlog-bench: the store's figures beside raw liblmdb baselines measured in the same run.
// Run by hand with a release build: `Tools/bench.sh` (see BENCHMARKS.md).
import Foundation
import LMDB
import PushlogCore

let args = CommandLine.arguments
func option(_ name: String, _ def: Int) -> Int {
    if let i = args.firstIndex(of: "--\(name)"), i + 1 < args.count, let v = Int(args[i + 1]) { return v }
    return def
}
func stringOption(_ name: String, _ def: String) -> String {
    if let i = args.firstIndex(of: "--\(name)"), i + 1 < args.count { return args[i + 1] }
    return def
}

let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let baselineBin = here.appendingPathComponent("baseline/bin").path
let scratch = stringOption("dir", NSTemporaryDirectory() + "pushlog-bench")

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func fresh(_ name: String) -> String {
    let dir = scratch + "/" + name
    try? FileManager.default.removeItem(atPath: dir)
    try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// Runs a program and returns its stdout's `key=value` pairs.
func run(_ path: String, _ arguments: [String]) -> [String: String] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    let out = Pipe()
    p.standardOutput = out
    try! p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    precondition(p.terminationStatus == 0, "\(path) \(arguments) failed")
    var kv: [String: String] = [:]
    for field in String(decoding: data, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" }) {
        let parts = field.split(separator: "=", maxSplits: 1)
        if parts.count == 2 { kv[String(parts[0])] = String(parts[1]) }
    }
    return kv
}

func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

func progress(_ label: String, _ done: Int, _ total: Int) {
    guard isatty(2) != 0 else { return }
    FileHandle.standardError.write(Data("\r\(label): \(done)/\(total)   ".utf8))
    if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
}

func table(_ header: [String], _ rows: [[String]]) {
    var w = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() { w[i] = max(w[i], c.count) } }
    func line(_ cells: [String]) -> String {
        "| " + cells.enumerated().map { $1.padding(toLength: w[$0], withPad: " ", startingAt: 0) }.joined(separator: " | ") + " |"
    }
    print(line(header))
    print("|" + w.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|")
    for r in rows { print(line(r)) }
}

func fmt(_ v: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", v) }

func userID(_ i: Int) -> String { String(format: "@u%07d:example.org", i) }

func sampleNotification(_ i: Int, users: Int) -> PushNotification {
    PushNotification(userID: userID(i % users), roomID: "!room\(i % 997):example.org", eventID: "$event\(i)",
                 streamOrdering: Int64(1000 + i),
                 actions: [.string("notify"), .object(["set_tweak": .string("sound"), "value": .string("default")])],
                 receivedTS: 1_732_900_000_000 + Int64(i),
                 event: ["type": .string("m.room.message"), "sender": .string("@bob:example.org"),
                         "content": .object(["msgtype": .string("m.text"), "body": .string("Hello there, this is message number \(i).")])],
                 context: ["sender_display_name": .string("Bob"), "room_name": .string("Lunch")])
}

// MARK: append

func benchAppend() {
    let n = option("n", 1_000_000)
    let runs = option("runs", 3)
    let users = 10_000
    print("## Store append: \(n) already-decoded notifications, batches of 1,000, \(users) users\n")
    let entries = (0..<n).map { LogEntry.notification(sampleNotification($0, users: users)) }
    let avg = entries.prefix(1000).map { EntryCodec.encode($0, ts: 0).count }.reduce(0, +) / 1000
    var rows: [[String]] = []
    for mode in Durability.allCases {
        var ours: [Double] = [], raw: [Double] = [], projected: [Double] = []
        for r in 0..<runs {
            let dir = fresh("append-\(mode.rawValue)")
            let store = try! Store(dataDir: dir, options: StoreOptions(durability: mode, mapSize: 4 << 30))
            let t0 = now()
            var i = 0
            while i < n {
                try! store.append(Array(entries[i..<min(i + 1000, n)]), now: 1_732_900_000_000)
                i += 1000
                if i % 100_000 == 0 { progress("append \(mode.rawValue) run \(r + 1)", i, n) }
            }
            ours.append(Double(n) / (now() - t0))
            store.close()
            if args.contains("--no-baseline") { raw.append(1); projected.append(1); continue }
            let c = run(baselineBin + "/lmdb_append", [fresh("raw-\(mode.rawValue)"), "\(n)", "\(avg)", "1000", mode.rawValue])
            raw.append(Double(c["rate"]!)!)
            let p = run(baselineBin + "/lmdb_append_projected",
                        [fresh("raw-projected-\(mode.rawValue)"), "\(n)", "\(users)", "997", "\(avg)", "1000", mode.rawValue])
            projected.append(Double(p["rate"]!)!)
        }
        let o = median(ours), c = median(raw), p = median(projected)
        rows.append([mode.rawValue, fmt(o), fmt(c), fmt(o / c * 100, 1) + "%", fmt(p), fmt(o / p * 100, 1) + "%"])
    }
    table(["durability", "pushlog store (notif/s)", "raw C, log only (rec/s)", "ratio",
           "raw C, same records as the store (notif/s)", "ratio"], rows)
    print("""

        Both C programs write \(avg)-byte log records with MDB_APPEND in commits of 1,000. "Log only" writes nothing
        else; "same records" (lmdb_append_projected) also does what the store does per notification: two receipt
        lookups, the per-user index entry, the unread read-modify-write, and the heads once per user per batch.

        """)
}

// MARK: pushlog append end to end

func benchAppendCLI() {
    let n = option("n", 200_000)
    let pushlog = stringOption("pushlog", here.deletingLastPathComponent().appendingPathComponent(".build/release/pushlog").path)
    let file = scratch + "/notifications.jsonl"
    try? FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    var text: [UInt8] = []
    for i in 0..<n {
        guard case .notification(let note) = LogEntry.notification(sampleNotification(i, users: 10_000)) else { continue }
        let row: JSON = .object(["user_id": .string(note.userID), "room_id": .string(note.roomID), "event_id": .string(note.eventID),
                                 "stream_ordering": .int(note.streamOrdering), "actions": .array(note.actions),
                                 "event": .object(note.event), "context": .object(note.context!)])
        row.write(to: &text)
        text.append(0x0A)
    }
    _ = FileManager.default.createFile(atPath: file, contents: Data(text))
    var rates: [Double] = []
    for _ in 0..<option("runs", 3) {
        let dir = fresh("append-cli")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: pushlog)
        p.arguments = ["append", "notifications", file, "--data-dir", dir]
        p.standardOutput = FileHandle.nullDevice
        let t0 = now()
        try! p.run()
        p.waitUntilExit()
        precondition(p.terminationStatus == 0)
        rates.append(Double(n) / (now() - t0))
    }
    print("## `pushlog append notifications` end to end (process start, JSON decoding, validation, durable commits of 10,000)\n")
    table(["lines", "bytes", "notifications/s (median of \(rates.count))"], [["\(n)", "\(text.count)", fmt(median(rates))]])
    print()
}

// MARK: boot check

func populate(_ dir: String, pushers: Int, pendingPercent: Int, url: String = "http://127.0.0.1:9/_matrix/push/v1/notify") {
    let store = try! Store(dataDir: dir, options: StoreOptions(durability: .nometasync, mapSize: 4 << 30))
    var batch: [LogEntry] = []
    for i in 0..<pushers {
        batch.append(.pusherSet(PusherConfig(id: PusherID(userID: userID(i), appID: "com.example.app", pushkey: "pushkey-\(i)"),
                                             kind: .http, data: ["url": .string(url)],
                                             append: true, createdTS: 1_732_900_000_000)))
        if batch.count == 10_000 || i == pushers - 1 {
            try! store.append(batch)
            batch.removeAll(keepingCapacity: true)
            progress("populate pushers", i + 1, pushers)
        }
    }
    let step = 100 / max(pendingPercent, 1)
    var k = 0
    for i in stride(from: 0, to: pushers, by: step) {
        batch.append(.notification(sampleNotification(i, users: pushers)))
        k += 1
        if batch.count == 10_000 { try! store.append(batch); batch.removeAll(keepingCapacity: true) }
    }
    if !batch.isEmpty { try! store.append(batch) }
    try! store.env.sync()
    store.close()
}

func rss() -> (hwm: Int, anon: Int) {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    func kb(_ key: String) -> Int {
        for line in status.split(separator: "\n") where line.hasPrefix(key) {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
        }
        return 0
    }
    return (kb("VmHWM:"), kb("RssAnon:"))
}

/// Child process: the boot check alone, as `start_pushers` runs it (paged sequence).
func bootCheckChild(_ dir: String) {
    let before = rss()
    let store = try! Store(dataDir: dir)
    let t0 = now()
    var pending = 0
    for _ in store.pendingPushers(pageSize: 1_000) { pending += 1 }
    let t = now() - t0
    let after = rss()
    print("seconds=\(t) pending=\(pending) hwm_kb=\(after.hwm) anon_kb=\(after.anon) anon_before_kb=\(before.anon)")
}

func benchBoot() {
    let runs = option("runs", 3)
    let sizes = args.contains("--quick") ? [100_000] : [100_000, 1_000_000]
    print("## Boot check: pushers with 1% pending, Pushlog's paged merge join vs a raw C two-cursor walk\n")
    var rows: [[String]] = []
    for size in sizes {
        let dir = fresh("boot-\(size)")
        populate(dir, pushers: size, pendingPercent: 1)
        var ours: [Double] = [], raw: [Double] = []
        var last: [String: String] = [:]
        for _ in 0..<runs {
            last = run(CommandLine.arguments[0], ["boot-check-child", dir])
            ours.append(Double(last["seconds"]!)!)
            let c = run(baselineBin + "/lmdb_pending_walk", [dir])
            precondition(c["pending"] == last["pending"], "C walk found \(c["pending"]!) pending, Pushlog \(last["pending"]!)")
            raw.append(Double(c["seconds"]!)!)
        }
        let o = median(ours), c = median(raw)
        rows.append(["\(size)", last["pending"]!, fmt(o * 1000, 1), fmt(c * 1000, 1), fmt(o / c, 2) + "×",
                     fmt(Double(last["hwm_kb"]!)! / 1024, 1), fmt(Double(last["anon_kb"]!)! / 1024, 1)])
    }
    table(["pushers", "pending", "pushlog (ms)", "raw C walk (ms)", "pushlog / C", "peak RSS incl. mapped file (MiB)", "anonymous RSS after (MiB)"], rows)
    print("\nPeak RSS counts the file pages of the LMDB map the walk touched (shared page cache); the anonymous (heap) RSS is what the process itself holds.\n")

    // Rebuild over the larger store.
    let dir = scratch + "/boot-\(sizes.last!)"
    var ours: [Double] = [], raw: [Double] = []
    var entries: UInt64 = 0
    for _ in 0..<runs {
        let store = try! Store(dataDir: dir)
        let t0 = now()
        let report = try! store.rebuild(repair: true)
        let t = now() - t0
        precondition(report.isClean, "rebuild found differences on a consistent store")
        entries = report.entries
        ours.append(Double(report.entries) / t)
        store.close()
        raw.append(Double(run(baselineBin + "/lmdb_scan", [dir, "log"])["rate"]!)!)
    }
    print("## `replay --rebuild` (derive every projection into shadow databases, compare with the stored ones)\n")
    table(["log entries", "rebuild (entries/s)", "raw C cursor scan of the log (entries/s)", "ratio"],
          [["\(entries)", fmt(median(ours)), fmt(median(raw)), fmt(median(ours) / median(raw) * 100, 2) + "%"]])
    print()
}

switch args.dropFirst().first {
case "deliver": benchDeliver()
case "email": await benchEmail()
case "boot-deliver": benchBootDeliver()
case "deliver-child": await deliverChild(args[2], concurrency: option("concurrency", 10))
case "batch-client": benchBatchClient()
case "populate-deliver": populateDelivery(args[2], pushers: option("pushers", 1_000), perPusher: option("per", 100))
case "latency": await benchLatency()
case "ingest": await benchIngest()
case "ingest-room": await benchIngestRoom()
case "serve-boot": await benchServeBoot()
case "fanout": await benchFanout()
case "boot-gateway": await benchBootGateway()
case "append": benchAppend()
case "append-cli": benchAppendCLI()
case "boot": benchBoot()
case "boot-check-child": bootCheckChild(args[2])
default:
    print("""
        usage: pushlog-bench append [--n N] [--runs R]
               pushlog-bench append-cli [--n N] [--pushlog PATH]
               pushlog-bench boot [--runs R] [--quick]
               pushlog-bench deliver [--pushers P] [--per K] [--runs R]     (nginx: Tools/nginx/gateway.sh start)
               pushlog-bench boot-deliver [--runs R] [--quick]
               pushlog-bench latency [--rate N] [--seconds S] [--pushers P]
               pushlog-bench ingest [--runs R] [--token T] [--baseline PATH]   (PATH: another pushlog binary)
               pushlog-bench ingest-room [--members N] [--posts K] [--runs R] [--pushlog PATH] [--baseline PATH]
               pushlog-bench serve-boot [--runs R] [--quick]   (nginx running)
               pushlog-bench fanout [--members 1000,10000] [--runs R] [--pushlog PATH] [--baseline PATH] [--delay-ms 100]
               pushlog-bench boot-gateway [--runs R] [--quick] [--pushlog PATH] [--baseline PATH] [--delay-ms 100]
        (--dir DIR for the scratch directory; build Tools/baseline first)
        """)
}
