import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP server written in Python for one test (a behaviour moto does not have). The test gives the
/// definition of a `Handler` class (`BaseHTTPRequestHandler`; `os`, `sys` and `threading` are imported); this
/// serves it over HTTP/1.1 on a free port of 127.0.0.1, quietly, for at most 60 s, and kills it when this object
/// goes away.
final class PythonServer {
    let port: Int
    private let process: Process

    private static let prologue = """
        import os, sys, threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        """
    private static let epilogue = """

        Handler.protocol_version = "HTTP/1.1"
        Handler.log_message = lambda self, *args: None
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Timer(60, lambda: os._exit(0)).start()  # never outlives a hung test
        print(server.server_address[1], flush=True)
        server.serve_forever()
        """

    init(handler: String, arguments: [String] = []) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.prologue + handler + Self.epilogue] + arguments
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
