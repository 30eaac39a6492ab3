import ArgumentParser
import Foundation
import PushlogCore

/// A placeholder until the daemon lands: opens the store and holds the data-dir lock until
/// SIGINT or SIGTERM, so the tools' refusal beside a server can be exercised.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon (HTTP API + pusher pool). Not built yet: this holds the data dir until SIGINT/SIGTERM.")
    @OptionGroup var dataDir: DataDirOption
    @Option(help: "YAML configuration file.") var config: String?
    @Option(help: "HOST:PORT to listen on.") var listen: String = "127.0.0.1:8690"

    func run() throws {
        try tool {
            let lock = try DataDirLock.exclusive(dataDir: dataDir.dataDir)
            defer { withExtendedLifetime(lock) {} }
            let store = try dataDir.openStore()
            signal(SIGINT, SIG_IGN)
            signal(SIGTERM, SIG_IGN)
            let done = DispatchSemaphore(value: 0)
            let sources = [SIGINT, SIGTERM].map { sig in
                let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                s.setEventHandler { done.signal() }
                s.resume()
                return s
            }
            // Ready only once the signals are handled.
            note("pushlog serve: the HTTP API and pusher pool are not built yet; holding \(dataDir.dataDir) (head \(try store.head())) until SIGINT/SIGTERM")
            done.wait()
            withExtendedLifetime(sources) {}
            store.close()
            note("pushlog serve: stopped")
        }
    }
}
