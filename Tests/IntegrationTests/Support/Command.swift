import Foundation

/// Runs an external command to completion with a timeout, capturing stdout and stderr through files (no pipe
/// buffers to deadlock on).
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum Command {
    static func run(_ executable: String, _ arguments: [String], timeout: TimeInterval = 120,
                    environment: [String: String]? = nil) throws -> CommandResult {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cmd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let outURL = directory.appendingPathComponent("out")
        let errURL = directory.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            throw HarnessError("\(executable) \(arguments.joined(separator: " ")) timed out after \(Int(timeout)) s")
        }
        process.waitUntilExit()
        return CommandResult(status: process.terminationStatus,
                             stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                             stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }

    /// Runs and requires exit status 0.
    @discardableResult
    static func check(_ executable: String, _ arguments: [String], timeout: TimeInterval = 120) throws -> String {
        let result = try run(executable, arguments, timeout: timeout)
        guard result.status == 0 else {
            throw HarnessError("\(executable) \(arguments.joined(separator: " ")) exited \(result.status): "
                + "\(result.stderr)\(result.stdout)")
        }
        return result.stdout
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The kernel's options of the mount at `path` (`ro`, `nosuid`, ...), and its type; empty when nothing is
/// mounted there.
func mountFacts(_ path: String) throws -> (options: Set<String>, type: String) {
    let result = try Command.run("/bin/findmnt", ["-n", "-o", "VFS-OPTIONS,FSTYPE", "--mountpoint", path])
    let fields = result.stdout.split(whereSeparator: \.isWhitespace)
    guard fields.count >= 2 else { return ([], "") }
    return (Set(fields[0].split(separator: ",").map(String.init)), String(fields[1]))
}
