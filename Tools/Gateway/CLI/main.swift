// pushlog-gateway: the delaying Matrix push gateway (DelayGateway) for hand runs.
//   pushlog-gateway [--host H] [--port P] [--delay-ms D] [--jitter-ms J]
// Answers POST /_matrix/push/v1/notify after D ms (± J, uniform); prints its counters each
// second while they change. Stop with Ctrl-C.
import DelayGateway
import Foundation

let args = CommandLine.arguments
func option(_ name: String) -> String? {
    guard let i = args.firstIndex(of: "--\(name)"), i + 1 < args.count else { return nil }
    return args[i + 1]
}
if args.contains("--help") || args.contains("-h") {
    print("usage: pushlog-gateway [--host 127.0.0.1] [--port 0] [--delay-ms 100] [--jitter-ms 0]")
    exit(0)
}
/// One line to stdout at once (print's buffer would hold it when stdout is a file).
func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
let delay = Int(option("delay-ms") ?? "100") ?? 100
let jitter = Int(option("jitter-ms") ?? "0") ?? 0
let latency: DelayGateway.Latency = jitter > 0 ? .uniform(minMS: max(0, delay - jitter), maxMS: delay + jitter) : .fixed(ms: delay)
let gateway = try await DelayGateway.start(host: option("host") ?? "127.0.0.1", port: Int(option("port") ?? "0") ?? 0,
                                           delay: latency, keepBodies: false)
say("pushlog-gateway: listening, notify URL \(gateway.url), latency \(latency), open file limit \(DelayGateway.raiseOpenFileLimit())")
var last = ""
while true {
    try await Task.sleep(for: .seconds(1))
    let line = gateway.stats().description
    if line != last { say(line); last = line }
}
