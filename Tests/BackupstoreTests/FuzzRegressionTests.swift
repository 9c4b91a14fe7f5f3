import Backupstore
import ConvoyCore
import Foundation
import XCTest

/// Every input a fuzz target (Sources/ConvoyFuzz, scripts/fuzz) crashed on is kept in FuzzRegressions/<target>/
/// and must now be refused with a thrown ConvoyError. The tree target's inputs are replayed by BackupFSTests.
final class FuzzRegressionTests: XCTestCase {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("FuzzRegressions").path

    /// The inputs kept for `target`, by name.
    static func inputs(_ target: String, in directory: String = directory) throws -> [(String, [UInt8])] {
        let folder = directory + "/" + target
        guard FileManager.default.fileExists(atPath: folder) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: folder).filter { !$0.hasPrefix(".") }.sorted()
            .map { name in (name, Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name)))) }
    }

    func testKeptInputsAreRefused() throws {
        let targets: [(String, ([UInt8]) throws(ConvoyError) -> Void)] = [
            ("manifest", { bytes throws(ConvoyError) in _ = try FuzzEntryPoints.manifest(bytes) }),
            ("packindex", FuzzEntryPoints.packIndex),
            ("sealed", FuzzEntryPoints.sealed),
            ("record", FuzzEntryPoints.record),
        ]
        var replayed = 0
        for (target, decode) in targets {
            for (name, bytes) in try Self.inputs(target) {
                XCTAssertThrowsError(try decode(bytes), "\(target)/\(name)") { error in
                    XCTAssertTrue(error is ConvoyError, "\(target)/\(name): \(error)")
                }
                replayed += 1
            }
        }
        XCTAssertGreaterThan(replayed, 0, "no inputs found under \(Self.directory)")
    }
}
