import XCTest

/// A test case with a started daemon (vfs) and a `vfs://` destination beside it for its backups.
class BackupDaemonTestCase: XCTestCase {
    var daemon: DaemonHarness!
    var destination = ""

    override func setUpWithError() throws {
        daemon = try DaemonHarness()
        try daemon.start()
        destination = "vfs://" + daemon.directory + "/backups"
    }

    override func tearDown() {
        daemon.cleanUp()
    }
}
