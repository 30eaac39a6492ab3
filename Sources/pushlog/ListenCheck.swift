import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether `serve` can listen on HOST:PORT, tried before anything else starts (the store, the
/// pusher pool), so that a port already in use is said plainly and no pusher has delivered
/// anything by then. The HTTP server binds for real afterwards; this only tries a bind, with
/// SO_REUSEADDR as the server sets it, and lets go.
enum ListenCheck {
    /// Throws ``UsageError`` saying why HOST:PORT cannot be listened on, when a bind says so.
    /// Port 0 (any free port) and names that do not resolve are left to the server.
    static func check(host: String, port: Int, listen: String) throws {
        guard port != 0 else { return }
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        guard getaddrinfo(bare, String(port), &hints, &list) == 0, let first = list else { return }
        defer { freeaddrinfo(list) }
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            defer { entry = info.pointee.ai_next }
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 else { continue }
            switch errno {
            case EADDRINUSE:
                throw UsageError(message: "cannot listen on \(listen): the port is already in use (another pushlog serve, or another program, listens there); choose another with --listen or the listen key")
            case EACCES:
                throw UsageError(message: "cannot listen on \(listen): permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)")
            case EADDRNOTAVAIL:
                throw UsageError(message: "cannot listen on \(listen): \(host) is not an address of this machine")
            default:
                continue
            }
        }
    }
}
