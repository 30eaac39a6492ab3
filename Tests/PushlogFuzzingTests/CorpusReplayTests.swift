import Foundation
import PushlogFuzzing
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
}
