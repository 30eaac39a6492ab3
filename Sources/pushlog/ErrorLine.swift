import Foundation
import LMDB
#if canImport(Glibc)
import Glibc
#endif

/// One line for an error the command did not expect, naming the path and the system's reason
/// where the error carries them (`cannot create /x/data: File exists`). Foundation's own
/// descriptions are multi-line dumps of error domains and user-info dictionaries: never printed.
func errorLine(_ error: any Error) -> String {
    if let e = error as? CocoaError {
        let path = e.filePath ?? e.url?.path
        let reason = posixReason(e.underlying) ?? posixReason(e.userInfo[NSUnderlyingErrorKey] as? any Error)
            ?? cocoaReason(e.code)
        // Foundation numbers its read errors 256-511 and its write (and create) errors 512-639.
        // FileManager.createDirectory over a regular file (a data dir that is a file) says "exists".
        let verb = e.code == .fileWriteFileExists ? "cannot create directory"
            : (512..<640).contains(e.code.rawValue) ? "cannot write" : (256..<512).contains(e.code.rawValue) ? "cannot read" : "cannot use"
        return path.map { "\(verb) \($0): \(reason)" } ?? reason
    }
    if let reason = posixReason(error) { return reason }
    if error is LMDBError { return "\(error)" }
    return "\(error)".split(whereSeparator: \.isNewline).joined(separator: " ")
}

/// strerror's words for a POSIX error (Foundation's own or bridged from NSPOSIXErrorDomain).
private func posixReason(_ error: (any Error)?) -> String? {
    guard let error else { return nil }
    if let e = error as? POSIXError { return String(cString: strerror(e.code.rawValue)) }
    let ns = error as NSError
    if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
    return nil
}

private func cocoaReason(_ code: CocoaError.Code) -> String {
    switch code {
    case .fileNoSuchFile, .fileReadNoSuchFile: return String(cString: strerror(ENOENT))
    case .fileReadNoPermission, .fileWriteNoPermission: return String(cString: strerror(EACCES))
    case .fileWriteFileExists: return String(cString: strerror(EEXIST))
    case .fileWriteOutOfSpace: return String(cString: strerror(ENOSPC))
    case .fileWriteVolumeReadOnly: return String(cString: strerror(EROFS))
    default: return "error \(code.rawValue)"
    }
}
