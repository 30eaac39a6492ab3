/// The links a digest holds: rooms and events in the user's client, and `mxc://` thumbnails.
struct MatrixLinks: Sendable {
    /// `email.client_base_url` without its trailing slashes.
    let clientBase: String
    /// `email.public_baseurl` with one trailing slash; "" when there is none.
    let publicBase: String

    init(clientBaseURL: String, publicBaseURL: String) {
        var client = clientBaseURL
        while client.hasSuffix("/") { client.removeLast() }
        clientBase = client
        publicBase = publicBaseURL.isEmpty || publicBaseURL.hasSuffix("/") ? publicBaseURL : publicBaseURL + "/"
    }

    private var isMatrixTo: Bool { clientBase == "https://matrix.to" }

    /// `{client}/#/room/{room}`, or `https://matrix.to/#/{room}`.
    func room(_ roomID: String) -> String {
        isMatrixTo ? "\(clientBase)/#/\(Self.segment(roomID))" : "\(clientBase)/#/room/\(Self.segment(roomID))"
    }

    /// The room link followed by `/{event}`.
    func event(_ eventID: String, in roomID: String) -> String {
        room(roomID) + "/" + Self.segment(eventID)
    }

    /// `{public}_matrix/media/v1/thumbnail/{server}/{media}?width=&height=&method=` for an
    /// `mxc://server/media` URI; nil for anything else, or without a public base URL.
    func thumbnail(_ mxc: String, width: Int, height: Int, method: String) -> String? {
        guard !publicBase.isEmpty, mxc.hasPrefix("mxc://") else { return nil }
        var rest = Substring(mxc.dropFirst("mxc://".count))
        if let end = rest.firstIndex(where: { $0 == "#" || $0 == "?" }) { rest = rest[..<end] }
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        return "\(publicBase)_matrix/media/v1/thumbnail/\(Self.segment(parts[0]))/\(Self.segment(parts[1]))"
            + "?width=\(width)&height=\(height)&method=\(method)"
    }

    /// Percent-encodes `id` as one path segment of a URL fragment: unreserved characters,
    /// sub-delimiters (`!$&'()*+,;=`), `:` and `@` stay; `/`, `?`, `#`, `%`, spaces and every
    /// non-ASCII byte are encoded, so an id can neither add a segment nor end the fragment.
    static func segment(_ id: some StringProtocol) -> String {
        var out = ""
        out.reserveCapacity(id.utf8.count)
        for byte in id.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case _ where "-._~!$&'()*+,;=:@".utf8.contains(byte):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(hex[Int(byte >> 4)])
                out.unicodeScalars.append(hex[Int(byte & 0xF)])
            }
        }
        return out
    }
}
