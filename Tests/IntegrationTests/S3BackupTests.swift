import AWS
import Foundation
import XCTest

/// Backups to `s3://` through the real daemon, against moto's server with signature checks on.
final class S3BackupTests: XCTestCase {
    var daemon: DaemonHarness!
    var destination = ""

    override func setUp() async throws {
        let environment = ProcessInfo.processInfo.environment
        if environment["CONVOY_SKIP_S3"] == "1" { throw XCTSkip("CONVOY_SKIP_S3=1") }
        guard let endpointText = environment["CONVOY_TEST_S3_ENDPOINT"], let endpoint = URL(string: endpointText) else {
            throw HarnessError("CONVOY_TEST_S3_ENDPOINT is not set: "
                + "run the tests through scripts/test, which starts moto's server")
        }
        let bucket = "convoy-it-" + UUID().uuidString.lowercased().prefix(12).replacingOccurrences(of: "-", with: "")
        let client = try S3Client(.init(bucket: bucket, region: "us-east-1", endpoint: endpoint,
                                        credentials: try AWSCredentials.load()))
        try await client.createBucket()
        destination = "s3://\(bucket)@us-east-1/convoy"
        daemon = try DaemonHarness()
        // The browse target is under /tmp, outside the default browse roots.
        daemon.extraArguments = ["--s3-endpoint", endpointText, "--browse-root", daemon.directory]
        try daemon.start()
    }

    override func tearDown() {
        daemon?.cleanUp()
    }

    func testBackupListVerifyRestoreAndVolumesWithSharedPrefixesOnS3() throws {
        for volume in ["vol1", "vol10"] {
            XCTAssertEqual(try daemon.cli(["create", volume]).status, 0)
            try Command.check("/bin/sh", ["-c", """
                cd '\(daemon.root)/vfs/\(volume)' && mkdir -p d && head -c 1500000 /dev/urandom > d/data \
                && echo '\(volume)' > name && ln -s name link
                """])
            XCTAssertEqual(try daemon.cli(["snapshot", "create", volume, "--name", "\(volume)-s"]).status, 0)
        }
        let url1 = try daemon.cli(["backup", "create", "vol1-s", "--dest", destination])
        XCTAssertEqual(url1.status, 0, url1.stderr)
        let url10 = try daemon.cli(["backup", "create", "vol10-s", "--dest", destination])
        XCTAssertEqual(url10.status, 0, url10.stderr)
        let first = url1.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let second = url10.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(first.hasPrefix(destination + "?backup="), first)

        let only1 = try daemon.cli(["backup", "list", destination, "--volume-name", "vol1"]).stdout
        XCTAssertTrue(only1.contains(first) && !only1.contains(second), only1)
        XCTAssertEqual(try daemon.cli(["backup", "verify", first]).status, 0)

        let restored = try daemon.cli(["create", "from-s3", "--backup", second])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        try Command.check("/usr/bin/diff",
                          ["-r", "--no-dereference", daemon.root + "/vfs/vol10", daemon.root + "/vfs/from-s3"])

        // Deleting vol1's backup leaves vol10's whole.
        XCTAssertEqual(try daemon.cli(["backup", "delete", first]).status, 0)
        XCTAssertEqual(try daemon.cli(["backup", "verify", second]).status, 0)
        let all = try daemon.cli(["backup", "list", destination]).stdout
        XCTAssertTrue(all.contains(second) && !all.contains(first), all)
    }

    func testMissingCredentialsAndBucketsAreClearErrors() throws {
        XCTAssertEqual(try daemon.cli(["create", "lonely"]).status, 0)
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "lonely", "--name", "lonely-s"]).status, 0)
        let noBucket = try daemon.cli(["backup", "create", "lonely-s", "--dest",
                                       "s3://no-such-bucket-here@us-east-1/x"])
        XCTAssertEqual(noBucket.status, 1)
        XCTAssertTrue(noBucket.stderr.contains("NoSuchBucket"), noBucket.stderr)
        XCTAssertFalse(noBucket.stderr
                           .contains(ProcessInfo.processInfo.environment["AWS_SECRET_ACCESS_KEY"] ?? "\u{0}"),
                       "the secret never appears in an error")
    }

    func testBrowseAndLazyRestoreFromS3() throws {
        XCTAssertEqual(try daemon.cli(["create", "s3src"]).status, 0)
        let source = try TreeDescription.populate(daemon.root + "/vfs/s3src")
        let expected = try TreeDescription.describe(source)
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "s3src", "--name", "s3src-snap"]).status, 0)
        let backup = try daemon.cli(["backup", "create", "s3src-snap", "--dest", destination])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let url = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        // Browse: every block comes from moto's S3 on demand.
        let target = daemon.directory + "/browse"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let mounted = try daemon.cli(["backup", "mount", url, target])
        XCTAssertEqual(mounted.status, 0, mounted.stderr)
        XCTAssertEqual(try TreeDescription.describe(target), expected)
        XCTAssertEqual(try daemon.cli(["backup", "umount", target]).status, 0)

        // Lazy restore from S3, hydrated, then a plain directory equal to the source.
        let lazy = try daemon.cli(["create", "s3lazy", "--backup", url, "--lazy"])
        XCTAssertEqual(lazy.status, 0, lazy.stderr)
        let waited = try daemon.cli(["hydrate", "s3lazy", "--wait"])
        XCTAssertEqual(waited.status, 0, waited.stderr)
        for _ in 0..<100 where !daemon.mountsUnderDirectory.isEmpty { usleep(100_000) }
        XCTAssertEqual(daemon.mountsUnderDirectory, [])
        XCTAssertEqual(try TreeDescription.describe(daemon.root + "/vfs/s3lazy"), expected)
    }
}
