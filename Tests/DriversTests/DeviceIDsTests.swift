@testable import Drivers
import Foundation
import XCTest

final class DeviceIDsTests: XCTestCase {
    func testIdsAreUniqueUnderConcurrencyAndSurviveARestart() async throws {
        let directory = NSTemporaryDirectory() + "convoy-ids-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ids = DeviceIDs(path: directory + "/next-device-id")
        let handed = try await withThrowingTaskGroup(of: UInt32.self) { group in
            for _ in 0..<64 { group.addTask { try ids.next() } }
            return try await group.reduce(into: [UInt32]()) { $0.append($1) }
        }
        XCTAssertEqual(Set(handed).count, 64, "no id handed out twice")
        XCTAssertEqual(handed.sorted(), Array(1...64))
        // A new instance (a restarted daemon) continues after the last one.
        XCTAssertEqual(try DeviceIDs(path: directory + "/next-device-id").next(), 65)
    }
}
