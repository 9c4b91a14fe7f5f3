import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs an external program with a timeout. A failure's message names the command and carries its stderr, so the
/// user sees what the tool said. Output goes through files, so a chatty tool cannot fill a pipe and hang.
public enum ExternalCommand {
    public struct Output: Sendable {
        public var stdout: String
        public var stderr: String
    }

    /// `leavesDaemon`: the command starts a process that outlives it (`mount -t glusterfs` starts the FUSE
    /// client). Foundation's Process learns that a child ended when every copy of a socket the child inherits is
    /// closed, so such a daemon would make the command look alive forever; a shell closes the inherited
    /// descriptors first (Foundation then waits for the real exit).
    public static func run(_ executable: String, _ arguments: [String], timeout: Duration,
                           leavesDaemon: Bool = false) async throws(ConvoyError) -> Output {
        if leavesDaemon {
            // No redirection in the loop: bash would park stderr on a descriptor the loop then closes.
            let closeInherited = #"for fd in /proc/$$/fd/*; do fd=${fd##*/}; "#
                + #"if ((fd > 2)) && [[ -e /proc/$$/fd/$fd ]]; then eval "exec $fd>&-"; fi; done; exec "$0" "$@""#
            return try await run("/bin/bash", ["-c", closeInherited, executable] + arguments, timeout: timeout,
                                 describedAs: describe(executable, arguments))
        }
        return try await run(executable, arguments, timeout: timeout, describedAs: describe(executable, arguments))
    }

    private static func run(_ executable: String, _ arguments: [String], timeout: Duration,
                            describedAs command: String) async throws(ConvoyError) -> Output {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("convoy-cmd-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw ConvoyError(.unavailable, "cannot prepare to run \(executable): \(error)")
        }
        defer { try? FileManager.default.removeItem(at: directory) }
        let outURL = directory.appendingPathComponent("out")
        let errURL = directory.appendingPathComponent("err")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = childEnvironment(ProcessInfo.processInfo.environment)
        process.standardInput = FileHandle.nullDevice
        do {
            _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
            _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: outURL)
            process.standardError = try FileHandle(forWritingTo: errURL)
            try process.run()
        } catch {
            throw ConvoyError(.unavailable, "cannot run \(executable): \(error)")
        }
        let started = ContinuousClock.now
        while process.isRunning {
            if ContinuousClock.now - started > timeout {
                process.terminate()
                try? await Task.sleep(for: .seconds(2))
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                process.waitUntilExit()
                throw ConvoyError(.driverFailure, "\(command) did not finish within \(timeout); stopped it")
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        process.waitUntilExit()
        let output = Output(stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                            stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
        guard process.terminationStatus == 0 else {
            let said = output.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            throw ConvoyError(.driverFailure, "\(command) failed (exit \(process.terminationStatus))"
                + "\(said.isEmpty ? "" : ": \(said.prefix(2000))")")
        }
        return output
    }

    /// The daemon's environment without its secrets: mkfs, mount and the gluster client (which lives for days)
    /// need none of the S3 or EC2 credentials the daemon was started with, and a child's environment is readable
    /// in /proc by whoever may read that process's files.
    static func childEnvironment(_ environment: [String: String]) -> [String: String] {
        environment.filter { name, _ in !isSecret(name) }
    }

    /// AWS's variables, and any whose name says it holds a secret.
    static func isSecret(_ name: String) -> Bool {
        let upper = name.uppercased()
        return upper.hasPrefix("AWS_")
            || ["SECRET", "TOKEN", "PASSWORD", "PASSPHRASE", "CREDENTIAL", "ACCESS_KEY"].contains { upper.contains($0) }
    }

    static func describe(_ executable: String, _ arguments: [String]) -> String {
        ([URL(fileURLWithPath: executable).lastPathComponent] + arguments).joined(separator: " ")
    }
}
