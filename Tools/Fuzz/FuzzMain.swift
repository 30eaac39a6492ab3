import Foundation
import PushlogFuzzing

// Built two ways. With `-D PUSHLOG_LIBFUZZER` and libFuzzer's instrumentation and archive
// (Tools/fuzz.sh), `main` hands over to libFuzzer's driver, which calls `fuzz` per input. In
// the ordinary build, which must link like every other executable of the package, it is a plain
// replayer: `pushlog-fuzz FILE…` runs each file once, to reproduce a crash without sanitizers.
//
// `main` stays ours in both: SwiftPM links an executable's entry point under a name of its own
// (`pushlog_fuzz_main`), so libFuzzer's `main` could not take its place.

#if PUSHLOG_LIBFUZZER
typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

/// libFuzzer's driver (`int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*)(const uint8_t *, size_t))`).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: FuzzCallback) -> CInt

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    DecoderFuzz.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@main
enum Fuzz {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzz))
    }
}
#else
@main
enum Replay {
    static func main() throws {
        let paths = CommandLine.arguments.dropFirst()
        if paths.isEmpty {
            FileHandle.standardError.write(Data("usage: pushlog-fuzz FILE...  (run each input once)\n".utf8))
            exit(2)
        }
        for path in paths {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            bytes.withUnsafeBytes { DecoderFuzz.run($0) }
            print("ok \(path)")
        }
    }
}
#endif
