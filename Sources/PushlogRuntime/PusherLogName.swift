import PushlogCore

extension PusherID {
    /// How a log line names the pusher: its user, its app id and the first 8 characters of its
    /// pushkey. A pushkey is a device's credential at its push provider, so the log never holds
    /// a whole one; 8 characters are enough to tell a user's devices apart.
    public var logName: String {
        "user \(userID), app \(appID), pushkey \(Self.shortened(pushkey))"
    }

    /// The first 8 characters of a pushkey, with an ellipsis when there were more.
    public static func shortened(_ pushkey: String) -> String {
        pushkey.count > 8 ? "\(pushkey.prefix(8))…" : pushkey
    }
}
