/// The `email.*` settings (contract, Configuration). Durations in milliseconds.
public struct EmailConfig: Sendable, Equatable {
    /// nil: email pushers are inert.
    public var smtpURL: String?
    public var smtpUser: String?
    public var smtpPass: String?
    public var requireTLS = false
    public var notifFrom = "%(app)s <noreply@localhost>"
    public var appName = "Matrix"
    public var clientBaseURL = "https://matrix.to"
    /// nil: `http://<listen>/`.
    public var publicBaseURL: String?
    public var templateDir: String?
    public var delayBeforeMailMS: Int64 = 600_000
    public var throttleStartMS: Int64 = 600_000
    public var throttleMaxMS: Int64 = 86_400_000
    public var throttleResetAfterMS: Int64 = 43_200_000

    /// Each mail about a room multiplies its throttle by this, up to `throttleMaxMS` (Synapse's
    /// factor: 10 min × 144 = 24 h).
    public static let throttleMultiplier: Int64 = 144

    public init() {}
}
