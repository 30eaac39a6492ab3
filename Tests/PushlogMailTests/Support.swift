import Glibc

/// A TCP port on 127.0.0.1 with nothing listening: bound to get a free number, never
/// listened on, then closed, so connecting to it is refused.
func closedPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    precondition(fd >= 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
            bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
        }
    }
    precondition(bound)
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A minimal RFC 5322 message with CRLF line breaks.
func plainMessage(subject: String = "test", body: String) -> [UInt8] {
    Array("From: sender@example.org\r\nTo: alice@example.org\r\nSubject: \(subject)\r\n\r\n\(body)".utf8)
}
