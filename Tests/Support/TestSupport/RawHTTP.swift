import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/1.1 exchange over a fresh TCP connection to 127.0.0.1, with the request target sent
/// byte for byte as given (no client normalises `//v1/…`, dot segments or `%2F` on the way), for
/// tests of how the server itself reads a path.
public struct RawHTTPReply: Sendable {
    public var status: Int
    public var body: String
}

public func rawHTTP(port: Int, method: String, target: String, headers: [String: String] = [:],
                    body: String = "") throws -> RawHTTPReply {
    let connection = try RawConnection(port: port)
    try connection.send(requestHead(port: port, method: method, target: target, headers: headers, bodySize: body.utf8.count) + body)
    return try connection.readReply()
}

/// A request sent as a careful client sends a large body: the head with `Expect: 100-continue`,
/// then the body only once the server has answered `100 Continue`. Returns the interim answer's
/// status line (nil if the server said nothing within `wait`) and the final reply; without an
/// interim answer the body is sent anyway, as curl does after waiting.
public func rawHTTPExpectingContinue(port: Int, method: String, target: String, headers: [String: String] = [:],
                                     body: String, wait: Int = 5) throws -> (interim: String?, reply: RawHTTPReply) {
    let connection = try RawConnection(port: port, timeoutSeconds: wait)
    var head = headers
    head["Expect"] = "100-continue"
    try connection.send(requestHead(port: port, method: method, target: target, headers: head, bodySize: body.utf8.count))
    let interim = try connection.readHead()
    connection.setTimeout(seconds: 10)
    try connection.send(body)
    return (interim, try connection.readReply())
}

private func requestHead(port: Int, method: String, target: String, headers: [String: String], bodySize: Int) -> String {
    var request = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
    for (name, value) in headers { request += "\(name): \(value)\r\n" }
    return request + "Content-Length: \(bodySize)\r\n\r\n"
}

private final class RawConnection {
    let fd: Int32
    /// Bytes read past the last head that ``readHead()`` returned.
    private var pending: [UInt8] = []

    init(port: Int, timeoutSeconds: Int = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        setTimeout(seconds: timeoutSeconds)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { close(fd); throw POSIXError(.ECONNREFUSED) }
    }

    deinit { close(fd) }

    func setTimeout(seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw POSIXError(.EPIPE) }
            sent += n
        }
    }

    /// One chunk from the socket, or nil at its end or when the receive timeout passes.
    private func receive() -> [UInt8]? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? Array(chunk[..<n]) : nil
    }

    /// The status line of the next response head, or nil if none came before the timeout.
    func readHead() throws -> String? {
        let end = Array("\r\n\r\n".utf8)
        while true {
            if let range = pending.firstRange(of: end) {
                let head = String(decoding: pending[..<range.lowerBound], as: UTF8.self)
                pending.removeSubrange(..<range.upperBound)
                return String(head.prefix { $0 != "\r" })
            }
            guard let chunk = receive() else { return nil }
            pending += chunk
        }
    }

    /// Everything up to the end of the connection, as one reply.
    func readReply() throws -> RawHTTPReply {
        var answer = pending
        pending = []
        while let chunk = receive() { answer += chunk }
        let text = String(decoding: answer, as: UTF8.self)
        let statusLine = text.prefix { $0 != "\r" }.split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw POSIXError(.EBADMSG) }
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return RawHTTPReply(status: status, body: body)
    }
}
