// What several test targets need alike: the built `pushlog`, a port nothing listens on, and a
// bounded wait for a condition.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The `pushlog` built beside the test bundle (or `PUSHLOG_BIN`).
public func pushlogBinary() throws -> String {
    let fm = FileManager.default
    if let env = ProcessInfo.processInfo.environment["PUSHLOG_BIN"], !env.isEmpty { return env }
    var starts = [URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()]
    if let exe = Bundle.main.executableURL { starts.append(exe.resolvingSymlinksInPath()) }
    for start in starts {
        var dir = start.deletingLastPathComponent()
        while dir.path != "/" && !dir.path.isEmpty {
            let candidate = dir.appendingPathComponent("pushlog").path
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: candidate, isDirectory: &isDir), !isDir.boolValue, fm.isExecutableFile(atPath: candidate) {
                return candidate
            }
            dir = dir.deletingLastPathComponent()
        }
    }
    throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "no pushlog binary beside the tests; run swift build first"])
}

/// A TCP port on 127.0.0.1 with nothing listening: bound to get a free number, never
/// listened on, then closed, so connecting to it is refused.
public func closedPort() -> Int {
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

/// Checks `condition` every 10 ms until it holds or `timeout` seconds pass; its last answer.
/// For state that has no change feed (the store, a process's counters).
public func eventually(timeout: Double = 10, _ condition: () throws -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return try condition()
}
