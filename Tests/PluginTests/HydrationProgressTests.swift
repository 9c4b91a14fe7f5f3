import Backupstore
import ConvoyCore
@testable import Plugin
import Synchronization
import XCTest

/// Hydration reports once per file to its job. The sink once gained two reabstraction thunks at every report
/// (a closure kept directly in a Mutex), so each report went through a longer chain than the last, and the daemon
/// died of a stack overflow after about 52,000 files of a lazy volume.
final class HydrationProgressTests: XCTestCase {
    func testReportsOfAMillionFilesHydrationStayFlat() {
        let entries = [Entry(path: "", type: .directory, mode: 0o755, uid: 0, gid: 0, mtimeSeconds: 0,
                             mtimeNanoseconds: 0, size: 0)]
        let manifest = Manifest(id: "backup-1", volume: "v1", kind: .files, createdAt: "", snapshot: nil, parent: nil,
                                volumeSize: 0, entries: entries, stats: Manifest.Stats())
        let progress = HydrationProgress(manifest: manifest)
        let reports = Atomic<Int>(0)
        progress.follow { _ in reports.add(1, ordering: .relaxed) }
        let files = 1_000_000
        let started = Date()
        for _ in 0..<files { progress.add(bytes: 1, files: 1) }
        XCTAssertEqual(reports.load(ordering: .relaxed), files)
        XCTAssertEqual(progress.current.filesDone, files)
        XCTAssertLessThan(Date().timeIntervalSince(started), 30, "each report must cost the same")
    }
}
