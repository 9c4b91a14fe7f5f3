import ConvoyClient
import ConvoyCore
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Both HTTP APIs of a real daemon take generated invalid requests: wrong types, nulls, huge and non-UTF-8
/// strings, deep nesting, bodies at and over the limit, unknown routes, slow and half-closed connections. Every
/// answer must be a well-formed error, the daemon must stay up with bounded memory, and no request may change its
/// state. `CONVOY_API_FUZZ_REQUESTS` requests (2,000 by default; 100,000 for bench/RELIABILITY.md), from
/// `CONVOY_API_FUZZ_SEED` (random by default, printed).
final class APIFuzzTests: XCTestCase {
    var daemon: DaemonHarness!

    override func setUpWithError() throws {
        daemon = try DaemonHarness()
        try daemon.start()
    }

    override func tearDown() {
        daemon.cleanUp()
    }

    private func state() throws -> String {
        let volumes = try daemon.cli(["list"]).stdout
        let snapshots = try daemon.cli(["snapshot", "list"]).stdout
        let mounted = daemon.mountsUnderDirectory.joined(separator: "\n")
        return volumes + snapshots + mounted
    }

    private func residentBytes() -> Int {
        guard let pid = daemon.process?.processIdentifier,
              let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }

    func testGeneratedInvalidRequestsAreAnsweredWithErrorsAndChangeNothing() throws {
        let environment = ProcessInfo.processInfo.environment
        let count = Int(environment["CONVOY_API_FUZZ_REQUESTS"] ?? "") ?? 2000
        let seed = UInt64(environment["CONVOY_API_FUZZ_SEED"] ?? "") ?? UInt64.random(in: 1...UInt64.max)
        XCTAssertEqual(try daemon.cli(["create", "keep"]).status, 0)
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "keep", "--name", "keep-snap"]).status, 0)
        let before = try state()
        var generator = RequestGenerator(seed: seed)
        let plugin = UnixHTTPClient(socketPath: daemon.pluginSocket, timeoutSeconds: 30)
        let client = UnixHTTPClient(socketPath: daemon.socket, timeoutSeconds: 30)
        var peak = residentBytes()
        var answered = 0, closed = 0, rawConnections = 0
        let started = Date()
        for index in 0..<count {
            if index % 50 == 49 {
                generator.abuseAConnection(daemon.pluginSocket)
                rawConnections += 1
            }
            let request = generator.next()
            let http = request.plugin ? plugin : client
            let response: UnixHTTPClient.Response
            do throws(ConvoyError) {
                response = try http.request(request.method, request.path, body: request.body,
                                            headers: request.headers)
            } catch {
                // Only a body over the limit may be answered by closing the connection.
                XCTAssertTrue(request.overLimit, "request \(index) (seed \(seed)) \(request.summary): \(error.message)")
                http.disconnect()
                closed += 1
                continue
            }
            answered += 1
            let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
            let error = object?[request.plugin ? "Err" : "Error"] as? String
            // Activate, List and Capabilities take no input: any body is as good as none, and they answer.
            let wellFormed = request.takesNoInput ? object != nil && response.status == 200
                : error.map { !$0.isEmpty } ?? false
            XCTAssertTrue(wellFormed, "request \(index) (seed \(seed)) \(request.summary) answered \(response.status) "
                          + "without an error: \(response.text.prefix(300))")
            if !request.plugin { XCTAssertGreaterThanOrEqual(response.status, 400, request.summary) }
            if index % 200 == 0 { peak = max(peak, residentBytes()) }
            if testRun?.failureCount ?? 0 > 5 { break }
            XCTAssertTrue(daemon.isRunning, "the daemon died at request \(index) (seed \(seed)) \(request.summary)")
            if !daemon.isRunning { break }
        }
        peak = max(peak, residentBytes())
        XCTAssertTrue(daemon.isRunning)
        XCTAssertEqual(try state(), before, "an invalid request changed the daemon's state (seed \(seed))")
        XCTAssertLessThan(peak, 400 << 20, "the daemon's memory grew to \(peak >> 20) MB")
        let seconds = Date().timeIntervalSince(started)
        print("API fuzz: \(count) requests (seed \(seed)) in \(Int(seconds)) s: \(answered) answered well-formed "
              + "(errors, but for Activate, List and Capabilities), \(closed) over-limit bodies refused by closing, "
              + "\(rawConnections) slow or half-closed connections; peak RSS \(peak >> 20) MB; state unchanged")
    }
}
