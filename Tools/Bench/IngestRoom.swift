// `ingest-room`: the API's side of a message in a big room, without delivery. A fresh
// `pushlog serve` takes POSTs of one event's N notifications (N members, default 10,000), one at a
// time; the figures are the POST's time (sent until answered: the entries are committed) and the
// CPU serve spends per POST. No pushers are registered, so nothing is pushed.
import Curl
import Foundation
import PushlogCore

func benchIngestRoom() async {
    let members = option("members", 10_000)
    let posts = option("posts", 15)
    let warmUp = 3
    let runs = max(1, option("runs", 3))
    let bodies = (0..<(warmUp + posts)).map { roomMessage(members: members, run: $0) }
    let http = try! CurlClient()
    let json = ["Content-Type": "application/json"]
    /// One run: a fresh server of `binary`; the median POST (s) and serve's CPU per POST (s), warm-up excluded.
    func once(_ label: String, _ binary: String) async -> (post: Double, cpu: Double) {
        var t0 = ContinuousClock.now
        let server = BenchServer(binary, dataDir: fresh("ingest-room"), t0: &t0)
        let url = "http://127.0.0.1:\(server.port)/v1/notifications"
        var times: [Double] = []
        var cpu0 = 0.0
        for (i, body) in bodies.enumerated() {
            if i == warmUp { cpu0 = server.cpuSeconds() }
            let start = ContinuousClock.now
            let r = try! await http.post(url, body: body, headers: json, timeout: .seconds(120))
            precondition(r.status == 200, "POST /v1/notifications: \(r.status)")
            if i >= warmUp { times.append(seconds(ContinuousClock.now - start)) }
            progress("ingest-room \(members) (\(label)): POSTs", i + 1, bodies.count)
        }
        let cpu = (server.cpuSeconds() - cpu0) / Double(posts)
        server.stop()
        return (median(times), cpu)
    }
    var results: [String: [(post: Double, cpu: Double)]] = [:]
    let binaries = gatewayBinaries()
    for run in 0..<runs {
        // The order alternates: the second server of a round ran ~9% slower than the first,
        // whichever binary it was (likely the first one's 300 MB still being written back).
        for binary in run % 2 == 0 ? binaries : binaries.reversed() {
            results[binary.label, default: []].append(await once(binary.label, binary.path))
        }
    }
    http.shutdown()
    print("## Ingest of a message in a \(members)-member room: POST /v1/notifications of \(members) notifications of one event, one at a time (\(posts) POSTs per run after \(warmUp) unmeasured)\n")
    func post(_ label: String) -> Double { median(results[label]!.map(\.post)) }
    func cpu(_ label: String) -> Double { median(results[label]!.map(\.cpu)) }
    var rows = [["POST, sent until answered (s), median of the run's medians", fmt(post("pushlog"), 3)],
                ["serve's CPU per POST (ms), median of \(runs) runs", fmt(cpu("pushlog") * 1000)]]
    if binaries.count == 2 {
        rows[0] += [fmt(post("baseline"), 3), String(format: "%.3f", post("pushlog") / post("baseline"))]
        rows[1] += [fmt(cpu("baseline") * 1000), String(format: "%.3f", cpu("pushlog") / cpu("baseline"))]
        table(["", "pushlog", "baseline", "pushlog / baseline"], rows)
    } else {
        table(["", "pushlog"], rows)
    }
    print("\nBinaries: " + binaries.map { "\($0.label) = \($0.path)" }.joined(separator: "; "))
    print("Machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; serve's CPU from /proc/PID/stat.\n")
}
