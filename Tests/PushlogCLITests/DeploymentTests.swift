import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The systemd unit of `Tools/pushlog.service` stays sandboxed: `systemd-analyze security`
/// (offline: it reads the file, needs no running systemd) scores it at most 2.0.
@Suite("deployment: the systemd unit")
struct DeploymentTests {
    static let systemdAnalyze: String? = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    static let unit = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Tools/pushlog.service").path

    @Test("systemd-analyze security --offline=true scores Tools/pushlog.service at most 2.0",
          .enabled(if: systemdAnalyze != nil, "systemd-analyze is not installed: the unit's exposure is not checked"))
    func exposure() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try #require(Self.systemdAnalyze))
        p.arguments = ["security", "--offline=true", "--no-pager", Self.unit]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        // "→ Overall exposure level for pushlog.service: 1.1 OK 🙂"
        let marker = "Overall exposure level for pushlog.service: "
        let line = try #require(text.split(separator: "\n").first { $0.contains(marker) }, "no overall score in: \(text.suffix(800))")
        let score = try #require(Double(line[line.range(of: marker)!.upperBound...].prefix { $0.isNumber || $0 == "." }), "\(line)")
        #expect(score <= 2.0, "exposure \(score) (at most 2.0):\n\(text)")
        #expect(p.terminationStatus == 0, "\(text.suffix(800))")
    }

    /// Sets the kernel's MDWE (what MemoryDenyWriteExecute= does through seccomp: no memory is
    /// ever both writable and executable, and none becomes executable), then runs the arguments.
    static let underMDWE = """
        import ctypes, os, sys
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(65, 1, 0, 0, 0) != 0: sys.exit("PR_SET_MDWE: " + os.strerror(ctypes.get_errno()))
        if len(sys.argv) > 1: os.execv(sys.argv[1], sys.argv[1:])
        """

    /// Linux 6.3 and later have PR_SET_MDWE; python3 is there for the mail tests' SMTP server.
    static let mdweAvailable: Bool = {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [PythonServer.interpreter, "-c", underMDWE]
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }()

    @Test("serve starts and stops cleanly with write-or-execute memory enforced, as MemoryDenyWriteExecute=yes asks",
          .enabled(if: mdweAvailable, "no PR_SET_MDWE here (Linux before 6.3, or no python3)"))
    func memoryDenyWriteExecute() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let p = try PushlogProcess(["serve", "--data-dir", box.dataDir, "--listen", "127.0.0.1:0"], scratch: box.root,
                                   executable: URL(fileURLWithPath: "/usr/bin/env"),
                                   prefix: [PythonServer.interpreter, "-c", Self.underMDWE, try PushlogBinary.require().path])
        #expect(poll(timeout: 30) { p.stderrSoFar().contains("pushlog serve: listening on") || !p.isRunning }, "\(p.stderrSoFar())")
        #expect(p.isRunning, "\(p.stderrSoFar())")
        p.signal(SIGTERM)
        let r = p.wait(timeout: 30)
        #expect(r.status == 0 && !r.signaled, "\(r)")
        #expect(r.err.contains("pushlog serve: stopped"), "\(r)")
    }

    @Test("the unit takes the token from a credential, runs as its own user and keeps its files private")
    func unitSettings() throws {
        let text = try String(contentsOfFile: Self.unit, encoding: .utf8)
        let lines = Set(text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
        for setting in ["User=pushlog", "UMask=0077", "StateDirectory=pushlog", "StateDirectoryMode=0700",
                        "LoadCredential=api_token:/etc/pushlog/api_token", "Environment=PUSHLOG_API_TOKEN_FILE=%d/api_token",
                        "CapabilityBoundingSet=", "NoNewPrivileges=yes", "MemoryDenyWriteExecute=yes",
                        "SystemCallFilter=@system-service", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"] {
            #expect(lines.contains(setting), "\(setting)")
        }
        // Gateways may be anywhere: the unit must not limit outbound addresses.
        #expect(!text.contains("IPAddressAllow=") && !text.contains("IPAddressDeny="))
    }
}
