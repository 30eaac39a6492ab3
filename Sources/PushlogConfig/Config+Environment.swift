import Foundation

// `PUSHLOG_…` variables: each configuration key has one; a misspelt one (`PUSHLOG_API_TOKN`)
// stops start-up as an unknown YAML key does, instead of leaving the API without its token.
extension Config {
    /// The variable that sets `key`: `push.backoff_initial` → `PUSHLOG_PUSH_BACKOFF_INITIAL`.
    public static func environmentName(_ key: String) -> String {
        "PUSHLOG_" + key.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    /// The `PUSHLOG_…` variables that are not configuration keys but are read elsewhere; the
    /// one list of them (a new one must be added here, or `serve` refuses to start beside it).
    public static let otherEnvironmentNames: Set<String> = [
        // The tests: the `pushlog` binary they run (and pass their environment to).
        "PUSHLOG_BIN",
        // ConfigDocsTests: rewrite docs/configuration.md instead of comparing it.
        "PUSHLOG_WRITE_DOCS",
    ]

    static func checkEnvironmentNames(_ environment: [String: String]) throws {
        let known = Set(keys.map(environmentName)).union(otherEnvironmentNames)
        for name in environment.keys.sorted() where name.hasPrefix("PUSHLOG_") && !known.contains(name) {
            throw Problem(key: name, message: "is not a configuration variable (see docs/configuration.md)", source: "environment")
        }
    }
}
