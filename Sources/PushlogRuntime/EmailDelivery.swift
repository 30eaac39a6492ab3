import PushlogCore

/// What one digest mail is about: the pool gathers it, `EmailDelivery.compose` turns it into a
/// subject and bodies.
public struct DigestRequest: Sendable {
    public var userID: String
    /// The address (the pusher's pushkey).
    public var to: String
    /// The notifications the mail shows, in log order: of each room, the newest
    /// `email.max_notifications_per_room` it covers.
    public var notifications: [Notification]
    /// Per room, how many more notifications the mail covers than ``notifications`` holds
    /// (counted, never loaded); rooms with none left out.
    public var omittedPerRoom: [String: Int] = [:]
    public var reason: EmailPlanner.Reason
    public var unsubscribeLink: String
    /// Milliseconds.
    public var now: Int64
}

/// A composed mail.
public struct ComposedEmail: Sendable {
    public var subject: String
    public var text: String
    public var html: String

    public init(subject: String, text: String, html: String) {
        self.subject = subject
        self.text = text
        self.html = html
    }
}

/// How email pushers mail: the templates and the SMTP mailer, which `serve` plugs in (the runtime
/// does not depend on them). Without one, email pushers are inert.
public struct EmailDelivery: Sendable {
    public var config: EmailConfig
    /// Renders a digest; throws when a template fails.
    public var compose: @Sendable (DigestRequest) throws -> ComposedEmail
    /// Sends a composed mail to `to` with its unsubscribe link; returns once the SMTP server
    /// accepted it, throws when it did not.
    public var send: @Sendable (_ to: String, _ mail: ComposedEmail, _ unsubscribeLink: String) async throws -> Void
    public var signer: UnsubscribeSigner
    /// The base of unsubscribe links (`email.public_baseurl`), asked when a mail is made: with
    /// `listen` on port 0 the port is known only once the server listens.
    public var publicBaseURL: @Sendable () -> String

    public init(config: EmailConfig, signer: UnsubscribeSigner, publicBaseURL: @escaping @Sendable () -> String,
                compose: @escaping @Sendable (DigestRequest) throws -> ComposedEmail,
                send: @escaping @Sendable (String, ComposedEmail, String) async throws -> Void) {
        self.config = config
        self.signer = signer
        self.publicBaseURL = publicBaseURL
        self.compose = compose
        self.send = send
    }
}
