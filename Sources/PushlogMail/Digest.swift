import PushlogCore

/// Everything one digest email is made of: whose it is, where links point, why it is sent now,
/// and every unread notification that is due (the renderer summarises a long list; it never
/// drops one silently).
public struct Digest: Sendable, Equatable {
    /// Why this email goes out now (the footer says it).
    public struct Reason: Sendable, Equatable {
        /// The room whose notification made the email due.
        public var roomID: String
        /// Milliseconds: when that notification was received.
        public var receivedAt: Int64
        /// Milliseconds: how long a notification waits before it can be mailed (`email.delay_before_mail`).
        public var delayBeforeMail: Int64
        /// Milliseconds: when we last emailed about that room; nil (or 0) when never.
        public var lastSentTS: Int64?
        /// Milliseconds: the room's current throttle; nil (or 0) when the room has none yet.
        public var throttleMS: Int64?

        public init(roomID: String, receivedAt: Int64, delayBeforeMail: Int64,
                    lastSentTS: Int64? = nil, throttleMS: Int64? = nil) {
            self.roomID = roomID
            self.receivedAt = receivedAt
            self.delayBeforeMail = delayBeforeMail
            self.lastSentTS = lastSentTS
            self.throttleMS = throttleMS
        }
    }

    /// The MXID of the user the email is for.
    public var userID: String
    /// The user's display name for the greeting; the MXID when nil.
    public var userDisplayName: String?
    /// `email.app_name`, e.g. "Matrix".
    public var appName: String
    /// `email.client_base_url`: room and event links point there (`https://matrix.to` links are
    /// written the matrix.to way).
    public var clientBaseURL: String
    /// `email.public_baseurl`: the base of `mxc://` thumbnail links; "" leaves images out.
    public var publicBaseURL: String
    /// The signed one-click unsubscribe link of this pusher.
    public var unsubscribeLink: String
    /// Milliseconds: the time of sending.
    public var now: Int64
    public var reason: Reason
    /// The unread due notifications of the user that the email can show, in log order.
    public var notifications: [PushNotification]
    /// Per room, how many more notifications are due than ``notifications`` holds (the sender
    /// loaded only the newest of a busy room): counted in the email's summaries.
    public var omittedPerRoom: [String: Int] = [:]

    public init(userID: String, userDisplayName: String? = nil, appName: String,
                clientBaseURL: String = "https://matrix.to", publicBaseURL: String,
                unsubscribeLink: String, now: Int64, reason: Reason,
                notifications: [PushNotification], omittedPerRoom: [String: Int] = [:]) {
        self.userID = userID
        self.userDisplayName = userDisplayName
        self.appName = appName
        self.clientBaseURL = clientBaseURL
        self.publicBaseURL = publicBaseURL
        self.unsubscribeLink = unsubscribeLink
        self.now = now
        self.reason = reason
        self.notifications = notifications
        self.omittedPerRoom = omittedPerRoom
    }
}

/// One digest email, ready for a MIME `multipart/alternative` message.
public struct RenderedDigest: Sendable, Equatable {
    /// Plain text on one line (CR and LF folded to spaces); never HTML-escaped.
    public var subject: String
    /// The text/plain part: nothing in it is HTML-escaped.
    public var text: String
    /// The text/html part: every value escaped, message bodies sanitised.
    public var html: String

    public init(subject: String, text: String, html: String) {
        self.subject = subject
        self.text = text
        self.html = html
    }
}
