import Foundation
import PushlogCore

// The tokens: a blank one is a mistake (`PUSHLOG_API_TOKEN=` in a unit file, `token: ""`), never
// a token that matches nothing, so it stops start-up instead of guarding the API with "".
extension Config {
    static func token(_ v: String) throws -> String { try nonBlank(v, "a token") }

    static func path(_ v: String) throws -> String { try nonBlank(v, "a file path") }

    private static func nonBlank(_ v: String, _ what: String) throws -> String {
        guard !v.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw Reason(text: "is blank: set \(what) or remove the key")
        }
        return v
    }

    /// Sets `apiToken` from `api.token_file` (read once, surrounding whitespace and the final
    /// newline trimmed), for secret stores and systemd credentials (`LoadCredential=`).
    mutating func readTokenFile() throws {
        guard let file = apiTokenFile else { return }
        guard apiToken == nil else {
            throw Problem(key: "api.token_file", message: "and 'api.token' are both set: keep one", source: file)
        }
        let bytes: [UInt8]
        do { bytes = try FileText.read(file) } catch let e as FileText.Failure {
            throw Problem(key: "api.token_file", message: "cannot be read (\(e.reason))", source: file)
        }
        let token = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else {
            throw Problem(key: "api.token_file", message: "names a blank file", source: file)
        }
        apiToken = token
    }
}
