import Curl
import Metrics

/// Why a POST to a gateway (a notification or a badge update) failed: the `reason` of
/// `pushlog_http_push_failures_total` and the words of the failure's log line.
enum GatewayFailure: Sendable, Equatable {
    /// Every address the gateway's host led to is one `push.ip_range_blacklist` blocks.
    case blockedAddress(String)
    case timeout(String)
    /// No connection, or it broke before the answer.
    case connection(String)
    /// The gateway answered with a status outside 2xx.
    case status(Int)
    /// The gateway answered 2xx with something other than a JSON object.
    case badAnswer
    case noURL
    case other(String)

    init(_ error: any Error) {
        guard let error = error as? HTTPError else {
            self = .other("\(error)")
            return
        }
        switch error.kind {
        case .blockedAddress: self = .blockedAddress(error.message)
        case .timeout: self = .timeout("\(error)")
        case .connectionFailed, .connectionLost: self = .connection("\(error)")
        default: self = .other("\(error)")
        }
    }

    var reason: String {
        switch self {
        case .blockedAddress: "blocked_address"
        case .timeout: "timeout"
        case .connection: "connection"
        case .status: "http_status"
        case .badAnswer: "bad_answer"
        case .noURL: "no_url"
        case .other: "other"
        }
    }

    /// What the log line says.
    var why: String {
        switch self {
        case .blockedAddress(let detail): "blocked_address: \(detail)"
        case .timeout(let detail), .connection(let detail), .other(let detail): detail
        case .status(let status): "HTTP \(status)"
        case .badAnswer: "answer is not a JSON object"
        case .noURL: "no data.url"
        }
    }

    /// Counts the failure under its reason.
    func count() {
        Counter(label: "pushlog_http_push_failures_total", dimensions: [("reason", reason)]).increment()
    }
}
