import Curl
import Foundation
import Testing
import TestSupport

@Suite("serve with api.token_file", .serialized)
struct ServeTokenFileTests {
    @Test("the token read from api.token_file (trimmed) guards /v1: that token gets 200, none or another gets 401")
    func tokenFile() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-token-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let tokenFile = root.appendingPathComponent("api_token")
        // As systemd-creds or `echo` leave it: a trailing newline, which is not part of the token.
        try Data("  s3cret-from-file\n".utf8).write(to: tokenFile)
        let server = try ServeProcess(dataDir: root.appendingPathComponent("data").path,
                                      environment: ["PUSHLOG_API_TOKEN_FILE": tokenFile.path])
        defer { server.stop(SIGKILL) }
        let client = try CurlClient()
        defer { client.shutdown() }
        func status(_ token: String?) async throws -> Int {
            let headers = token.map { ["Authorization": "Bearer \($0)"] } ?? [:]
            return try await client.send(method: "GET", url: "http://127.0.0.1:\(server.port)/v1/pushers?user_id=@a:example.org",
                                         headers: headers, timeout: .seconds(10)).status
        }
        #expect(try await status("s3cret-from-file") == 200)
        #expect(try await status(nil) == 401)
        #expect(try await status("s3cret") == 401)
        #expect(try await status("s3cret-from-file-and-more") == 401)
        #expect(try await status("other") == 401)
        #expect(server.stop(SIGTERM) == .exited(0))
    }
}
