import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reading a whole file with an error an operator can act on: the path and the system's reason
/// (`cannot read /etc/pushlog.yaml: Permission denied`), where Foundation gives either nothing
/// (`FileManager.contents`) or a multi-line dump of its error domain.
public enum FileText {
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let path: String
        /// The system's words for errno, such as "No such file or directory".
        public let reason: String
        public init(path: String, errno code: Int32) {
            self.path = path
            self.reason = String(cString: strerror(code))
        }
        public var description: String { "cannot read \(path): \(reason)" }
    }

    /// The bytes of the file at `path`; throws ``Failure`` naming it and why it cannot be read.
    public static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(path: path, errno: errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(path: path, errno: errno)  // EISDIR for a directory
            }
            if n == 0 { return bytes }
            bytes.append(contentsOf: chunk[..<n])
        }
    }
}
