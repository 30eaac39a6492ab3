/// The `email.*` settings (contract, Configuration). Durations in milliseconds.
public struct EmailConfig: Sendable, Equatable {
    /// nil: email pushers are inert.
    public var smtpURL: String?
    public var smtpUser: String?
    public var smtpPass: String?
    public var requireTLS = false
    /// SMTP AUTH over a connection that is not TLS (`smtp://` without `requireTLS`): refused at
    /// start-up unless set, since the password would cross the network in clear.
    public var allowPlaintextAuth = false
    /// A PEM bundle of the CAs that sign the MTA's certificate, instead of the system's.
    public var tlsCAFile: String?
    /// false: the MTA's certificate and host name are not checked (a local MTA with its own
    /// certificate); `serve` warns at start-up.
    public var tlsVerify = true
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
    /// How long an unsubscribe link works after its mail was made (90 days).
    public var unsubscribeLinkLifetimeMS: Int64 = 90 * 86_400_000
    /// Notifications loaded per room for one mail (the newest); the rest are only counted.
    public var maxNotificationsPerRoom = 20

    /// Each mail about a room multiplies its throttle by this, up to `throttleMaxMS` (Synapse's
    /// factor: 10 min × 144 = 24 h).
    public static let throttleMultiplier: Int64 = 144

    public init() {}
}
