/// Stored data that cannot be what we wrote: a bug or a damaged file.
public struct CorruptData: Error, CustomStringConvertible, Sendable {
    public let what: String
    public let reason: String
    public init(what: String, reason: String) {
        self.what = what
        self.reason = reason
    }
    public var description: String { "corrupt \(what): \(reason)" }
}
