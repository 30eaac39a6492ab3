import Foundation

/// SIGINT and SIGTERM as an async stream. The handler is installed with `sigaction` before
/// `stopSignals()` returns, so a signal sent the moment the server says it is running is never
/// lost (a DispatchSource arms asynchronously, and with SIG_IGN in the meantime a signal in that
/// window would vanish). The handler only writes the signal number to a pipe (async-signal-safe);
/// a thread reads the pipe and yields it.
nonisolated(unsafe) private var signalPipe: [Int32] = [-1, -1]

func stopSignals() -> AsyncStream<Int32> {
    pipe(&signalPipe)
    let (stream, continuation) = AsyncStream<Int32>.makeStream()
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { sig in
        var byte = UInt8(truncatingIfNeeded: sig)
        _ = write(signalPipe[1], &byte, 1)
    }
    sigemptyset(&action.sa_mask)
    action.sa_flags = SA_RESTART
    sigaction(SIGINT, &action, nil)
    sigaction(SIGTERM, &action, nil)
    let readEnd = signalPipe[0]
    Thread.detachNewThread {
        var byte: UInt8 = 0
        while read(readEnd, &byte, 1) == 1 { continuation.yield(Int32(byte)) }
    }
    return stream
}
