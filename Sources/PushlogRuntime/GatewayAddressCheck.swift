import Curl
import Foundation
import PushlogCore

extension AddressPolicy {
    /// Refuses, before anything is stored, an HTTP pusher whose `data.url` names its host by an
    /// address this policy blocks (`http://169.254.169.254/…`, `http://[::1]/…`,
    /// `http://127.1/…`). A host *name* passes: what it resolves to is checked when the push
    /// connects, the only moment that counts (DNS can change in between).
    ///
    /// - Throws: ``InputError`` for `data.url` (`M_INVALID_PARAM`, exit 65).
    public func checkGatewayAddress(_ entry: LogEntry) throws {
        guard case .pusherSet(let pusher) = entry, pusher.kind == .http,
              let url = pusher.data["url"]?.stringValue, let host = URLComponents(string: url)?.host,
              let address = IPAddress(literal: host), !permits(address) else { return }
        throw InputError(field: "data.url", message: "names \(address), an address in push.ip_range_blacklist (and not in push.ip_range_whitelist)",
                         kind: .invalid)
    }
}
