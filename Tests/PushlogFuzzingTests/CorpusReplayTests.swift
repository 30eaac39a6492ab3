import Foundation
import PushlogFuzzing
import TestSupport
import Testing

/// CI's share of the fuzzing: every input of the committed corpus (hand-made seeds, the inputs
/// of crashes found and fixed, the merged corpus of past runs) once through the same checks the
/// libFuzzer target runs, without the sanitizer build. A broken invariant traps the test run.
@Suite("Decoder fuzz corpus")
struct CorpusReplayTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Tools/Fuzz/corpus")

    @Test("every committed input passes every decoder's checks")
    func replayCorpus() throws {
        let files = try FileManager.default.contentsOfDirectory(at: Self.corpus, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") }
            .sorted { $0.path < $1.path }
        // The hand-made seeds alone are thirty: fewer means the directory was not found whole.
        #expect(files.count >= 30)
        var kinds = Set<String>()
        for file in files {
            let bytes = try Data(contentsOf: file)
            bytes.withUnsafeBytes { DecoderFuzz.run($0) }
            kinds.insert(String(file.lastPathComponent.prefix(while: { $0 != "-" })))
        }
        #expect(kinds.contains("seed"))
    }

    @Test("the ordinary build's pushlog-fuzz replays the files it is given, one line each")
    func replayerBinary() throws {
        let binary = URL(fileURLWithPath: try pushlogBinary()).deletingLastPathComponent().appendingPathComponent("pushlog-fuzz").path
        let inputs = ["seed-notification-batch.json", "seed-entry-notification-4.bin", "crash-entry-length-past-int-max.bin"]
            .map { Self.corpus.appendingPathComponent($0).path }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = inputs
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(text.split(separator: "\n").map(String.init) == inputs.map { "ok \($0)" })
    }
}
