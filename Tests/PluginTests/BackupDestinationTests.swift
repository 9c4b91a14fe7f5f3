import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
@testable import Plugin
import XCTest

/// Issue 18, "Who may do what": a daemon reads only the backup stores it has written a backup to, or that its
/// operator listed (`--backup-destinations`, by path component); `--allow-any-backup-destination` lets all through.
final class BackupDestinationTests: XCTestCase {
    /// A volume with one file, snapshotted and backed up to `destination`: the backup's URL.
    private func backedUp(_ fixture: ServiceFixture, to destination: String) async throws -> String {
        _ = try await fixture.volumes.create(name: "src", options: [:])
        try TreeFixture.write(try fixture.directory(of: "src") + "/f", TreeFixture.randomBytes(1 << 16, seed: 7))
        _ = try await fixture.ended(try await fixture.snapshots.createSnapshot(volume: "src", snapshot: "s1"))
        let job = try await fixture.ended(try await fixture.backups.createBackup(snapshot: "s1",
                                                                                  destination: destination))
        return try XCTUnwrap(job.result?["URL"])
    }

    /// A store this daemon never wrote: a copy of the store at `source` (holding `url`) made at `path`, as another
    /// daemon would have left it. Returns the backup's URL there.
    private func foreignStore(_ url: String, from source: String, at path: String) throws -> String {
        let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: source, toPath: path)
        let query = try XCTUnwrap(url.firstIndex(of: "?"))
        return "vfs://" + path + url[query...]
    }

    private func restoredFile(_ fixture: ServiceFixture, _ volume: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: try fixture.directory(of: volume) + "/f")))
    }

    func testAStoreNeverWrittenIsRefusedUntilTheDaemonHasWrittenABackupThere() async throws {
        let fixture = try ServiceFixture(self)
        let written = fixture.root + "/store"
        let url = try await backedUp(fixture, to: "vfs://" + written)
        let foreign = fixture.root + "/elsewhere/store"
        let foreignURL = try foreignStore(url, from: written, at: foreign)

        let message = await errorMessage {
            _ = try await fixture.restores.restore(name: "r1", backup: foreignURL, options: [:], wait: true)
        }
        XCTAssertTrue(message.hasPrefix("backup destination vfs://\(foreign) is not allowed on this daemon: it has "
            + "never written there and it is not in --backup-destinations; add it (convoy daemon "
            + "--backup-destinations vfs://\(foreign)) or run with --allow-any-backup-destination"), message)
        XCTAssertThrowsError(try fixture.volumes.get("r1"), "nothing is made of a refused restore")
        // Every other use of what is there is refused alike, and the store is left as it was.
        let uses: [(String, () async throws -> Void)] = [
            ("list", { _ = try await fixture.backups.listBackups(destination: "vfs://" + foreign, volume: nil) }),
            ("inspect", { _ = try await fixture.backups.inspectBackup(foreignURL) }),
            ("verify", { _ = try await fixture.backups.verifyBackup(foreignURL) }),
            ("delete", { _ = try await fixture.backups.deleteBackup(foreignURL) }),
        ]
        for (name, use) in uses {
            let refused = await errorMessage(use)
            XCTAssertTrue(refused.contains("is not allowed on this daemon"), "\(name): \(refused)")
            let kind = await errorKind(use)
            XCTAssertEqual(kind, .invalidArgument, name)
        }
        XCTAssertEqual(try FileManager.default.subpathsOfDirectory(atPath: foreign).sorted(),
                       try FileManager.default.subpathsOfDirectory(atPath: written).sorted())
        // The store this daemon wrote is read as before.
        _ = try await fixture.restores.restore(name: "mine", backup: url, options: [:], wait: true)
        XCTAssertEqual(try restoredFile(fixture, "mine"), TreeFixture.randomBytes(1 << 16, seed: 7))

        // A backup written there makes it one of this daemon's destinations, in its state.
        _ = try await fixture.ended(try await fixture.backups.createBackup(snapshot: "s1",
                                                                            destination: "vfs://" + foreign + "/"))
        let restored = try await fixture.restores.restore(name: "r1", backup: foreignURL, options: [:], wait: true)
        XCTAssertEqual(restored.state, .succeeded)
        XCTAssertEqual(try restoredFile(fixture, "r1"), TreeFixture.randomBytes(1 << 16, seed: 7))
        XCTAssertEqual(Set(try fixture.store.writtenDestinations()), ["vfs://" + written, "vfs://" + foreign])
        let restarted = try BackupDestinations(listed: [], allowsAny: false, store: fixture.store)
        XCTAssertNoThrow(try restarted.admit(try StoreLocation.parse("vfs://" + foreign), for: .existingBackups))
        // Only the destination itself: a store below it is another one.
        XCTAssertThrowsError(try restarted.admit(try StoreLocation.parse("vfs://\(foreign)/inner"),
                                                 for: .existingBackups))
    }

    func testAListedPrefixAllowsStoresBelowItByPathComponent() async throws {
        let writer = try ServiceFixture(self)
        let url = try await backedUp(writer, to: "vfs://" + writer.root + "/store")
        let base = writer.root
        let under = try foreignStore(url, from: base + "/store", at: base + "/b/team/store")
        let sibling = try foreignStore(url, from: base + "/store", at: base + "/backup-other")
        try FileManager.default.createSymbolicLink(atPath: base + "/b/link",
                                                   withDestinationPath: base + "/backup-other")
        let query = try XCTUnwrap(url.firstIndex(of: "?"))
        let linked = "vfs://" + base + "/b/link" + String(url[query...])

        // Written with a trailing slash: the same prefix.
        let fixture = try ServiceFixture(self, backupDestinations: ["vfs://\(base)/b/"])
        _ = try await fixture.restores.restore(name: "under", backup: under, options: [:], wait: true)
        XCTAssertEqual(try restoredFile(fixture, "under"), TreeFixture.randomBytes(1 << 16, seed: 7))
        let refused = await errorMessage {
            _ = try await fixture.restores.restore(name: "sibling", backup: sibling, options: [:], wait: true)
        }
        XCTAssertTrue(refused.contains("vfs://\(base)/backup-other is not allowed on this daemon"), refused)
        // A link below the prefix is judged by where it leads.
        let throughLink = await errorMessage {
            _ = try await fixture.restores.restore(name: "linked", backup: linked, options: [:], wait: true)
        }
        XCTAssertTrue(throughLink.contains("(vfs://\(base)/backup-other with its links resolved) is not allowed"),
                      throughLink)

        // With a list, a first backup goes only to a listed destination (or one written before).
        let listedURL = try await backedUp(fixture, to: "vfs://\(base)/b/new")
        XCTAssertTrue(listedURL.hasPrefix("vfs://\(base)/b/new?"), listedURL)
        let unlisted = await errorMessage {
            _ = try await fixture.backups.createBackup(snapshot: "s1", destination: "vfs://\(base)/unlisted")
        }
        XCTAssertTrue(unlisted.contains("it is not in --backup-destinations, and this daemon has never written "
            + "there"), unlisted)
        XCTAssertFalse(FileManager.default.fileExists(atPath: base + "/unlisted"))
    }

    func testPrefixesCompareByComponentAndMessagesShowNoSecret() throws {
        let directory = NSTemporaryDirectory() + "convoy-destinations-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        let store = try StateStore(path: directory + "/convoy.db")
        let destinations = try BackupDestinations(
            listed: ["s3://bucket@us-east-1/prefix/", "vfs://\(directory)/srv/b"], allowsAny: false, store: store)
        func allowed(_ url: String, for use: DestinationUse = .existingBackups) -> Bool {
            (try? destinations.admit(StoreLocation.parse(url), for: use)) != nil
        }
        for url in ["s3://bucket@us-east-1/prefix", "s3://bucket@us-east-1/prefix/a/b",
                    "s3://bucket@us-east-1//prefix//a/", "vfs://\(directory)/srv/b", "vfs://\(directory)/srv/b/x/",
                    "vfs://\(directory)//srv//b//y"] {
            XCTAssertTrue(allowed(url), url)
        }
        for url in ["s3://bucket@us-east-1/prefix-other", "s3://bucket@us-east-1/pre", "s3://bucket@us-east-1/",
                    "s3://bucket@eu-west-1/prefix/a", "s3://other@us-east-1/prefix/a",
                    "vfs://\(directory)/srv/backup-other", "vfs://\(directory)/srv", "vfs://\(directory)/srv/b/../c",
                    "ebs://us-east-1/snap-0123456789abcdef0"] {
            XCTAssertFalse(allowed(url), url)
            XCTAssertFalse(allowed(url, for: .newBackup), url)
        }
        // Credentials written where the bucket goes are never echoed.
        do {
            _ = try destinations.admit(try StoreLocation.parse("s3://AKIAEXAMPLE:s3cr3t@bucket/x"), for: .newBackup)
            XCTFail("refused")
        } catch {
            XCTAssertFalse(error.message.contains("s3cr3t"), error.message)
            XCTAssertTrue(error.message.contains("s3://<hidden>@bucket/x is not allowed"), error.message)
        }
        // Without a list, a first backup may go anywhere; what is there is read only once it was written.
        let unlisted = try BackupDestinations(listed: [], allowsAny: false, store: store)
        let elsewhere = try StoreLocation.parse("s3://another@us-east-1/x")
        XCTAssertNoThrow(try unlisted.admit(elsewhere, for: .newBackup))
        XCTAssertThrowsError(try unlisted.admit(elsewhere, for: .existingBackups))
        try unlisted.recordWritten(elsewhere)
        XCTAssertNoThrow(try unlisted.admit(elsewhere, for: .existingBackups))
        // A lazy volume's own backup is attached again whatever the flags say now.
        XCTAssertNoThrow(try destinations.admit(try StoreLocation.parse("s3://gone@us-east-1/x"), for: .attachedVolume))

        let everything = try BackupDestinations(listed: [], allowsAny: true, store: store)
        XCTAssertNoThrow(try everything.admit(try StoreLocation.parse("vfs:///anywhere"), for: .existingBackups))
        XCTAssertThrowsError(try BackupDestinations(listed: ["ftp://host/x"], allowsAny: false, store: store)) {
            XCTAssertTrue(($0 as? ConvoyError)?.message.hasPrefix("--backup-destinations: ") == true, "\($0)")
        }
    }

    func testAllowAnyBackupDestinationReadsStoresOtherDaemonsWrote() async throws {
        let writer = try ServiceFixture(self)
        let url = try await backedUp(writer, to: "vfs://" + writer.root + "/store")
        // Deliberately another daemon's store, nowhere listed.
        let fixture = try ServiceFixture(self, allowAnyBackupDestination: true)
        let listed = try await fixture.backups.listBackups(destination: "vfs://" + writer.root + "/store", volume: nil)
        XCTAssertEqual(listed.map(\.url), [url])
        _ = try await fixture.restores.restore(name: "copy", backup: url, options: [:], wait: true)
        XCTAssertEqual(try restoredFile(fixture, "copy"), TreeFixture.randomBytes(1 << 16, seed: 7))
        XCTAssertEqual(try fixture.store.writtenDestinations(), [], "reading records nothing")
    }

    /// A daemon upgraded from before the list existed keeps reading the stores its job history shows it wrote.
    func testAnUpgradedDaemonAdoptsTheDestinationsItsJobHistoryShows() throws {
        let directory = NSTemporaryDirectory() + "convoy-destinations-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory + "/old-store", withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        let store = try StateStore(path: directory + "/convoy.db")
        let url = "vfs://\(directory)/old-store?backup=backup-0123456789abcdef&volume=src"
        let failed = "vfs://\(directory)/failed-store?backup=backup-0123456789abcdef&volume=src"
        for (id, state, result) in [("job-1", ClientAPI.Job.State.succeeded, ["URL": url]),
                                    ("job-2", .failed, ["URL": failed])] {
            try store.saveJob(ClientAPI.Job(
                id: id, kind: "backup create", target: "s1", state: state, phase: "", bytesDone: 0, bytesTotal: 0,
                itemsDone: 0, itemsTotal: 0, startedAt: "2026-01-01T00:00:00Z", finishedAt: nil, result: result,
                error: nil))
        }
        let destinations = try BackupDestinations(listed: [], allowsAny: false, store: store)
        XCTAssertNoThrow(try destinations.admit(StoreLocation.parse("vfs://\(directory)/old-store"),
                                                for: .existingBackups))
        XCTAssertThrowsError(try destinations.admit(StoreLocation.parse("vfs://\(directory)/failed-store"),
                                                    for: .existingBackups))
    }
}
