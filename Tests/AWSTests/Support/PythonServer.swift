import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP server written in Python for one test (a behaviour moto does not have): the script binds port 0,
/// prints the port on its first line, and is killed when this object goes away.
final class PythonServer {
    let port: Int
    private let process: Process

    init(script: String, arguments: [String] = []) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        var line = Data()
        while let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
            line.append(byte)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self)) else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw SilentListener.ListenerError("the Python server printed no port")
        }
        self.process = process
        self.port = port
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
