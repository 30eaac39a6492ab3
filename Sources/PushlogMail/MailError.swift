/// Why a message could not be composed, or a mailer not configured.
///
/// Both cases name what was wrong, so the error reads on its own in a log line.
public enum MailError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A value that cannot go into a header safely: an address that is not a plain
    /// `local@domain`, or a URL with characters that would end the header early. `field` is
    /// the header's name in lower case (`"to"`, `"from"`, `"list-unsubscribe"`).
    case invalidHeader(field: String, reason: String)
    /// A configuration value that cannot be used; `key` is the contract's key
    /// (`"email.smtp_url"`, `"email.notif_from"`, …).
    case invalidConfig(key: String, reason: String)

    public var description: String {
        switch self {
        case .invalidHeader(let field, let reason):
            return "invalid \(field) header: \(reason)"
        case .invalidConfig(let key, let reason):
            return "invalid \(key): \(reason)"
        }
    }
}
