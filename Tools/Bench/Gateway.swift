// Delivery against a delaying gateway (issue 10): `pushlog serve` (the real binary) pushing to
// a DelayGateway that answers every push after 100 ms, as Sygnal does after APNs or FCM.
// `fanout`: one POST of N notifications, one per member; `boot-gateway`: spawn → every pending push.
import Curl
import DelayGateway
import Foundation
import PushlogCore

/// `pushlog serve` in the background on a free port, its stderr drained.
final class BenchServer {
    let process = Process()
    private(set) var port = 0

    /// Starts `binary`; returns once it listens. `t0` is set just before the spawn.
    init(_ binary: String, dataDir: String, t0: inout ContinuousClock.Instant) {
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0"]
        process.environment = ProcessInfo.processInfo.environment.merging([
            "PUSHLOG_PUSH_IP_RANGE_WHITELIST": "127.0.0.0/8",  // push.ip_range_whitelist: the gateway is on loopback
            "PUSHLOG_PUSH_MAX_AGE": "0",  // the boot store's notifications carry 2024 timestamps
        ]) { $1 }
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        t0 = .now
        try! process.run()
        let marker = "pushlog serve: listening on 127.0.0.1:"
        var text = ""
        while !(text.range(of: marker).map { text[$0.upperBound...].contains(",") } ?? false) {
            let chunk = err.fileHandleForReading.availableData
            precondition(!chunk.isEmpty, "\(binary) did not start: \(text)")
            text += String(decoding: chunk, as: UTF8.self)
        }
        port = Int(text[text.range(of: marker)!.upperBound...].prefix { $0.isNumber }) ?? 0
        let drain = err.fileHandleForReading
        Thread.detachNewThread { while !drain.availableData.isEmpty {} }
    }

    /// The CPU seconds (user + system) the server has used so far, from `/proc/PID/stat`.
    func cpuSeconds() -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        // Fields after the command: state is the 3rd field, utime and stime the 14th and 15th.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    func stop() {
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
    }
}

/// The body of one message in an N-member room: one notification per member (`userID(i)`), all
/// of one event, `$fanout<run>`.
func roomMessage(members n: Int, run: Int) -> [UInt8] {
    let notifications: [JSON] = (0..<n).map { i in
        .object(["user_id": .string(userID(i)), "room_id": .string("!fanout:example.org"),
                 "event_id": .string("$fanout\(run)"), "stream_ordering": .int(Int64(1_000 + run)),
                 "actions": .array([.string("notify"), .object(["set_tweak": .string("sound"), "value": .string("default")])]),
                 "event": .object(["type": .string("m.room.message"), "sender": .string("@bob:example.org"),
                                   "content": .object(["msgtype": .string("m.text"), "body": .string("Hello, room.")])]),
                 "context": .object(["sender_display_name": .string("Bob"), "room_name": .string("Fan-out")])])
    }
    return JSON.object(["notifications": .array(notifications)]).serialized()
}

/// The binaries a gateway bench compares: `--pushlog PATH` and, with `--baseline PATH`, a second.
func gatewayBinaries() -> [(label: String, path: String)] {
    let pushlog = stringOption("pushlog", here.deletingLastPathComponent().appendingPathComponent(".build/release/pushlog").path)
    let baseline = stringOption("baseline", "")
    return baseline.isEmpty ? [("pushlog", pushlog)] : [("pushlog", pushlog), ("baseline", baseline)]
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

/// One row per size: each binary's median, and the ratio when there are two.
func gatewayTable(_ first: String, _ rows: [(String, [Double])], binaries: [(label: String, path: String)], runs: Int) {
    var header = [first] + binaries.map { "\($0.label) (s, median of \(runs))" }
    if binaries.count == 2 { header.append("pushlog / baseline") }
    table(header, rows.map { size, medians in
        [size] + medians.map { String(format: "%.3f", $0) } + (medians.count == 2 ? [String(format: "%.3f", medians[0] / medians[1])] : [])
    })
    print("\nBinaries: " + binaries.map { "\($0.label) = \($0.path)" }.joined(separator: "; "))
    print("Machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; the gateway runs in this process on 2 NIO threads.\n")
}

// MARK: fanout

func benchFanout() async {
    let runs = option("runs", 3)
    let sizes = stringOption("members", "1000,10000").split(separator: ",").compactMap { Int($0) }
    let binaries = gatewayBinaries()
    let gateway = try! await DelayGateway.start(delay: .fixed(ms: option("delay-ms", 100)), keepBodies: false)
    let http = try! CurlClient(maxConnectionsPerHost: 64, connectionCacheSize: 64)
    let json = ["Content-Type": "application/json"]
    var rows: [(String, [Double])] = []
    for n in sizes {
        var medians: [Double] = []
        for binary in binaries {
            var t0 = ContinuousClock.now
            let server = BenchServer(binary.path, dataDir: fresh("fanout-\(n)"), t0: &t0)
            let api = "http://127.0.0.1:\(server.port)/v1"
            // N members, each with one http pusher to the gateway, registered through the API.
            let next = Ticket()
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<32 {
                    group.addTask {
                        while true {
                            let i = next.take()
                            guard i < n else { return }
                            let pusher: JSON = .object([
                                "user_id": .string(userID(i)), "kind": .string("http"), "app_id": .string("com.example.app"),
                                "pushkey": .string("pushkey-\(i)"), "app_display_name": .string("Bench"),
                                "device_display_name": .string("bench"), "lang": .string("en"),
                                "data": .object(["url": .string(gateway.url)]),
                            ])
                            let r = try! await http.send(method: "PUT", url: api + "/pushers", body: pusher.serialized(),
                                                         headers: json, timeout: .seconds(60))
                            precondition(r.status == 200, "PUT /v1/pushers: \(r.status) \(String(decoding: r.body, as: UTF8.self))")
                            if (i + 1) % 500 == 0 { progress("fanout \(n): register pushers (\(binary.label))", i + 1, n) }
                        }
                    }
                }
            }
            var times: [Double] = []
            for run in 0..<runs {
                let body = roomMessage(members: n, run: run)
                gateway.reset()
                let start = ContinuousClock.now
                let r = try! await http.post(api + "/notifications", body: body, headers: json, timeout: .seconds(120))
                precondition(r.status == 200, "POST /v1/notifications: \(r.status)")
                let answered = ContinuousClock.now
                do {
                    try await gateway.waitUntil(received: n, timeout: .seconds(600))
                } catch {
                    fatalError("fanout \(n) (\(binary.label)): \(error)")
                }
                let stats = gateway.stats()
                times.append(seconds(stats.lastReceived! - start))
                // Where the time went: the POST's own answer, the first push, the peak in flight.
                FileHandle.standardError.write(Data(("fanout \(n) (\(binary.label)) run \(run + 1): last push \(fmt(times.last!, 3)) s; "
                    + "POST answered \(fmt(seconds(answered - start), 3)) s, first push \(fmt(seconds(stats.firstReceived! - start), 3)) s, "
                    + "peak in flight \(stats.peakInFlight)\n").utf8))
                // Let the last answers land before the next message.
                try? await gateway.waitUntil(timeout: .seconds(60)) { $0.answered >= n && $0.inFlight == 0 }
                progress("fanout \(n) (\(binary.label)): runs", run + 1, runs)
            }
            FileHandle.standardError.write(Data("fanout \(n) (\(binary.label)): serve used \(fmt(server.cpuSeconds(), 2)) s of CPU over the registration and \(runs) runs\n".utf8))
            server.stop()
            medians.append(median(times))
        }
        rows.append(("\(n)", medians))
    }
    http.shutdown()
    await gateway.stop()
    print("## Fan-out: one POST /v1/notifications of N notifications (one per member, one http pusher each) → every push at a gateway answering after \(option("delay-ms", 100)) ms\n")
    gatewayTable("members", rows, binaries: binaries, runs: runs)
}

// MARK: boot-gateway

func benchBootGateway() async {
    let runs = option("runs", 3)
    let sizes: [(pushers: Int, pending: Int)] = args.contains("--quick") ? [(10_000, 1_000)] : [(10_000, 1_000), (100_000, 10_000)]
    let binaries = gatewayBinaries()
    let gateway = try! await DelayGateway.start(delay: .fixed(ms: option("delay-ms", 100)), keepBodies: false)
    var rows: [(String, [Double])] = []
    for size in sizes {
        // One populated store, copied afresh for every run of every binary.
        let template = fresh("bootgw-\(size.pushers)-template")
        populate(template, pushers: size.pushers, pendingPercent: size.pending * 100 / size.pushers, url: gateway.url)
        var medians: [Double] = []
        for binary in binaries {
            var times: [Double] = []
            for run in 0..<runs {
                let dir = fresh("bootgw-\(size.pushers)")
                for file in try! FileManager.default.contentsOfDirectory(atPath: template) {
                    try! FileManager.default.copyItem(atPath: template + "/" + file, toPath: dir + "/" + file)
                }
                gateway.reset()
                var t0 = ContinuousClock.now
                let server = BenchServer(binary.path, dataDir: dir, t0: &t0)
                do {
                    try await gateway.waitUntil(received: size.pending, timeout: .seconds(600))
                } catch {
                    fatalError("boot-gateway \(size.pushers) (\(binary.label)): \(error)")
                }
                times.append(seconds(gateway.stats().lastReceived! - t0))
                server.stop()
                try? await gateway.waitUntil(timeout: .seconds(10)) { $0.inFlight == 0 }
                progress("boot-gateway \(size.pushers)/\(size.pending) (\(binary.label)): runs", run + 1, runs)
            }
            medians.append(median(times))
        }
        rows.append(("\(size.pushers) / \(size.pending)", medians))
    }
    await gateway.stop()
    print("## Boot: `pushlog serve` spawned over a store of P pushers, K of them with one pending notification → every pending push at a gateway answering after \(option("delay-ms", 100)) ms\n")
    gatewayTable("pushers / pending", rows, binaries: binaries, runs: runs)
}
