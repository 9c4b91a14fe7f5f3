import AWS
import CSIProtocol
import ConvoyCore
import ConvoyTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import XCTest

/// CSI snapshots are backups: cut from a volume written through a published target, they outlive the volume
/// itself, and volumes restored from them (in full, or lazily) hold the same bytes, read through real mounts.
final class CSISnapshotTests: XCTestCase {
    var daemon: DaemonHarness!
    var socket = ""

    override func tearDown() {
        daemon?.cleanUp()
    }

    /// The files written into the source volume, by path.
    static let files: [String: [UInt8]] = [
        "notes.txt": Array("cut through CSI\n".utf8),
        "data/random.bin": TreeFixture.randomBytes(3 << 20, seed: 20),
        "data/deeper/small.bin": TreeFixture.randomBytes(4_321, seed: 21),
    ]

    private func write(into target: String) throws {
        for (path, bytes) in Self.files {
            try FileManager.default.createDirectory(atPath: (target + "/" + path as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try TreeFixture.write(target + "/" + path, bytes)
        }
    }

    private func assertHoldsTheFiles(_ target: String, _ what: String) {
        for (path, bytes) in Self.files {
            let read = (try? Data(contentsOf: URL(fileURLWithPath: target + "/" + path))).map(Array.init)
            XCTAssertEqual(read, bytes, "\(what): \(path) differs from what was written")
        }
    }

    /// The whole life cycle against `destination`: snapshot, the source deleted, full and lazy restores read back.
    private func lifeCycle(destination: String) async throws {
        let kubelet = daemon.directory + "/kubelet/pods"
        try await withCSIClient(socket) { client in
            let steps = CSISteps(client)
            try await steps.create("pvc-source")
            try await steps.stageAndPublish("pvc-source", at: kubelet + "/source")
            try write(into: kubelet + "/source")

            let snapshot = try await steps.snapshot("snap-one", of: "pvc-source", parameters: ["dest": destination])
            XCTAssertTrue(snapshot.readyToUse, "the snapshot never became ready")
            XCTAssertTrue(snapshot.snapshotID.hasPrefix(destination + "?backup="), "the id is not the backup's URL")
            XCTAssertEqual(snapshot.sourceVolumeID, "pvc-source")
            let again = try await steps.snapshot("snap-one", of: "pvc-source", parameters: ["dest": destination])
            XCTAssertEqual(again.snapshotID, snapshot.snapshotID, "a repeated CreateSnapshot made another snapshot")

            try await steps.unpublishAndUnstage("pvc-source", at: kubelet + "/source")
            try await steps.delete("pvc-source")
            // The backup outlives its volume: both restores below read the store only.
            var list = Csi_V1_ListSnapshotsRequest()
            list.snapshotID = snapshot.snapshotID
            let listed = try await steps.controller.listSnapshots(list).entries.map(\.snapshot)
            XCTAssertEqual(listed.map(\.snapshotID), [snapshot.snapshotID])
            XCTAssertEqual(listed.first?.readyToUse, true)

            let full = try await steps.create("pvc-full", fromSnapshot: snapshot.snapshotID)
            XCTAssertEqual(full.contentSource.snapshot.snapshotID, snapshot.snapshotID)
            try await steps.stageAndPublish("pvc-full", at: kubelet + "/full")
            assertHoldsTheFiles(kubelet + "/full", "full restore")
            try await steps.create("pvc-lazy", parameters: ["lazy": "true"], fromSnapshot: snapshot.snapshotID)
            try await steps.stageAndPublish("pvc-lazy", at: kubelet + "/lazy")
            XCTAssertTrue(MountInfo.isMountPoint(kubelet + "/lazy"), "the lazy volume is not mounted")
            assertHoldsTheFiles(kubelet + "/lazy", "lazy restore")

            var delete = Csi_V1_DeleteSnapshotRequest()
            delete.snapshotID = snapshot.snapshotID
            _ = try await steps.controller.deleteSnapshot(delete)
            _ = try await steps.controller.deleteSnapshot(delete)
            let afterDelete = try await steps.controller.listSnapshots(list).entries.count
            XCTAssertEqual(afterDelete, 0, "a deleted snapshot is still listed")
            let gone = await csiStatus { try await steps.create("pvc-after", fromSnapshot: snapshot.snapshotID) }
            XCTAssertEqual(gone, .notFound, "a deleted snapshot's backup can still be restored")
            // The full restore does not depend on the backup; reads of what the lazy one already fetched neither.
            assertHoldsTheFiles(kubelet + "/full", "full restore after the snapshot's deletion")
            for name in ["pvc-full", "pvc-lazy"] {
                try await steps.unpublishAndUnstage(name, at: kubelet + "/" + String(name.dropFirst(4)))
                try await steps.delete(name)
            }
        }
    }

    func testSnapshotToADirectoryOutlivesItsVolumeAndRestoresFullyAndLazily() async throws {
        daemon = try DaemonHarness()
        socket = try daemon.startServingCSI()
        try await lifeCycle(destination: "vfs://" + daemon.directory + "/backups")
    }

    func testSnapshotToS3RestoresFullyAndLazily() async throws {
        let environment = ProcessInfo.processInfo.environment
        if environment["CONVOY_SKIP_S3"] == "1" { throw XCTSkip("CONVOY_SKIP_S3=1") }
        guard let endpointText = environment["CONVOY_TEST_S3_ENDPOINT"], let endpoint = URL(string: endpointText) else {
            throw HarnessError("CONVOY_TEST_S3_ENDPOINT is not set: run the tests through scripts/test")
        }
        let bucket = "convoy-csi-" + UUID().uuidString.lowercased().prefix(8)
        try await S3Client(.init(bucket: bucket, region: "us-east-1", endpoint: endpoint,
                                 credentials: try AWSCredentials.load())).createBucket()
        daemon = try DaemonHarness()
        daemon.extraArguments = ["--s3-endpoint", endpointText]
        socket = try daemon.startServingCSI()
        try await lifeCycle(destination: "s3://\(bucket)@us-east-1/k8s")
    }

    /// A lazy volume whose backup becomes unreachable while it hydrates is reported abnormal by
    /// NodeGetVolumeStats (kubelet's volume health), naming the backup; a healthy one is not.
    func testALazyVolumeWhoseBackupIsGoneIsAbnormal() async throws {
        daemon = try DaemonHarness()
        daemon.extraArguments = ["--hydration-pause", "0.5"]  // 0.5 s a file: long enough to break the store
        socket = try daemon.startServingCSI()
        let store = daemon.directory + "/store"
        let pods = daemon.directory + "/kubelet/pods"
        try await withCSIClient(socket) { client in
            let steps = CSISteps(client)
            try await steps.create("pvc-origin")
            try await steps.stageAndPublish("pvc-origin", at: pods + "/origin")
            for index in 0..<12 { try TreeFixture.write(pods + "/origin/f\(index)", [UInt8](repeating: 1, count: 9)) }
            let snapshot = try await steps.snapshot("snap-origin", of: "pvc-origin",
                                                    parameters: ["dest": "vfs://" + store])
            try await steps.create("pvc-slow", parameters: ["lazy": "true"], fromSnapshot: snapshot.snapshotID)
            try await steps.stageAndPublish("pvc-slow", at: pods + "/slow")
            var stats = Csi_V1_NodeGetVolumeStatsRequest()
            stats.volumeID = "pvc-slow"
            stats.volumePath = pods + "/slow"
            let healthy = try await steps.node.nodeGetVolumeStats(stats).volumeCondition
            XCTAssertFalse(healthy.abnormal, healthy.message)

            XCTAssertEqual(rename(store, store + ".away"), 0)
            defer { rename(store + ".away", store) }
            var condition = healthy
            let deadline = Date().addingTimeInterval(30)
            while !condition.abnormal && Date() < deadline {
                try await Task.sleep(for: .milliseconds(200))
                condition = try await steps.node.nodeGetVolumeStats(stats).volumeCondition
            }
            XCTAssertTrue(condition.abnormal, "an unreachable backup left the volume healthy")
            XCTAssertTrue(condition.message.contains(snapshot.snapshotID), condition.message)
            var get = Csi_V1_ControllerGetVolumeRequest()
            get.volumeID = "pvc-slow"
            let controllerView = try await steps.controller.controllerGetVolume(get)
            XCTAssertEqual(controllerView.volume.volumeID, "pvc-slow")
            XCTAssertTrue(controllerView.status.volumeCondition.abnormal, "ControllerGetVolume says healthy")
            get.volumeID = "pvc-never"
            let missing = await csiStatus { _ = try await steps.controller.controllerGetVolume(get) }
            XCTAssertEqual(missing, .notFound)
            stats.volumeID = "pvc-origin"
            stats.volumePath = pods + "/origin"
            let origin = try await steps.node.nodeGetVolumeStats(stats).volumeCondition
            XCTAssertFalse(origin.abnormal, "a volume of its own was reported abnormal: \(origin.message)")
        }
    }

    /// Names, sources and parameters the spec says to refuse, each with its code; a backup made by the CLI is
    /// found by its URL (a pre-provisioned snapshot); the daemon's default destination serves classes without one.
    func testSnapshotErrorsDefaultsAndPreProvisionedBackups() async throws {
        daemon = try DaemonHarness()
        let store = "vfs://" + daemon.directory + "/default-store"
        daemon.extraArguments = ["--csi-snapshot-dest", store]
        socket = try daemon.startServingCSI()
        try await withCSIClient(socket) { client in
            let steps = CSISteps(client)
            try await steps.create("pvc-a")
            try await steps.create("pvc-b")
            let snapshot = try await steps.snapshot("snap-a", of: "pvc-a")
            XCTAssertTrue(snapshot.snapshotID.hasPrefix(store + "?backup="), "the default destination was not used")

            var request = CSISteps<HTTP2ClientTransport.Posix>.snapshotRequest("snap-a", of: "pvc-b")
            let otherSource = await csiStatus { _ = try await steps.controller.createSnapshot(request) }
            XCTAssertEqual(otherSource, .alreadyExists)
            request.name = "snap-b"
            request.sourceVolumeID = "pvc-missing"
            let missing = await csiStatus { _ = try await steps.controller.createSnapshot(request) }
            XCTAssertEqual(missing, .notFound)
            request.sourceVolumeID = "pvc-b"
            request.parameters = ["colour": "blue"]
            let unknown = await csiStatus { _ = try await steps.controller.createSnapshot(request) }
            XCTAssertEqual(unknown, .invalidArgument)
            request.parameters = ["csi.storage.k8s.io/volumesnapshot/name": "ignored"]
            request.name = ""
            let unnamed = await csiStatus { _ = try await steps.controller.createSnapshot(request) }
            XCTAssertEqual(unnamed, .invalidArgument)

            var bySource = Csi_V1_ListSnapshotsRequest()
            bySource.sourceVolumeID = "pvc-a"
            let ofA = try await steps.controller.listSnapshots(bySource).entries.map(\.snapshot.snapshotID)
            XCTAssertEqual(ofA, [snapshot.snapshotID])
            bySource.sourceVolumeID = "pvc-b"
            let ofB = try await steps.controller.listSnapshots(bySource).entries.count
            XCTAssertEqual(ofB, 0)
            var byID = Csi_V1_ListSnapshotsRequest()
            byID.snapshotID = "not a backup url"
            let ofNothing = try await steps.controller.listSnapshots(byID).entries.count
            XCTAssertEqual(ofNothing, 0)

            let made = try cliBackup(of: "pvc-b", to: store)
            byID.snapshotID = made
            let found = try await steps.controller.listSnapshots(byID).entries.map(\.snapshot)
            XCTAssertEqual(found.map(\.snapshotID), [made], "a backup made by the CLI is not found by its URL")
            XCTAssertEqual(found.first?.sourceVolumeID, "pvc-b")
            XCTAssertEqual(found.first?.readyToUse, true)
            try await steps.create("pvc-from-cli", fromSnapshot: made)

            let unset = try DaemonHarness()
            defer { unset.cleanUp() }
            let bare = try unset.startServingCSI(hostID: "csi-host-bare")
            try await withCSIClient(bare) { client in
                let steps = CSISteps(client)
                try await steps.create("pvc-c")
                let request = CSISteps<HTTP2ClientTransport.Posix>.snapshotRequest("snap-c", of: "pvc-c")
                let noDestination = await csiStatus { _ = try await steps.controller.createSnapshot(request) }
                XCTAssertEqual(noDestination, .invalidArgument)
            }
        }
    }

    /// A snapshot and a backup through the client socket, as `convoy snapshot create` + `backup create` make them.
    private func cliBackup(of volume: String, to destination: String) throws -> String {
        let snapshot = try daemon.cli(["snapshot", "create", volume, "--name", "cli-snap"])
        XCTAssertEqual(snapshot.status, 0, snapshot.stderr)
        let backup = try daemon.cli(["backup", "create", "cli-snap", "--dest", destination])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        return backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A daemon killed between a snapshot's cut and its upload: after the restart the CO's repeated CreateSnapshot
/// makes it anew and gets it ready, the first attempt's local snapshot is gone, and the snapshot is listed once.
final class CSISnapshotCrashTests: XCTestCase {
    var daemon: DaemonHarness!

    override func tearDown() {
        daemon?.cleanUp()
    }

    func testACrashBetweenCutAndUploadIsMadeAnewOnTheNextCall() async throws {
        daemon = try DaemonHarness()
        let store = "vfs://" + daemon.directory + "/store"
        daemon.environment["CONVOY_FAILPOINT"] = "csi-snapshot-cut"
        let socket = try daemon.startServingCSI()
        try await withCSIClient(socket) { client in
            let steps = CSISteps(client)
            try await steps.create("pvc-crash")
            let request = CSISteps<HTTP2ClientTransport.Posix>.snapshotRequest("snap-crash", of: "pvc-crash",
                                                                               parameters: ["dest": store])
            _ = await csiStatus { _ = try await steps.controller.createSnapshot(request) }
        }
        let deadline = Date().addingTimeInterval(10)
        while daemon.isRunning && Date() < deadline { usleep(50_000) }
        XCTAssertFalse(daemon.isRunning, "the failpoint did not stop the daemon")
        daemon.environment["CONVOY_FAILPOINT"] = nil
        try daemon.start()
        let deadline2 = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: socket) && Date() < deadline2 { usleep(20_000) }
        try await withCSIClient(socket) { client in
            let steps = CSISteps(client)
            let snapshot = try await steps.snapshot("snap-crash", of: "pvc-crash", parameters: ["dest": store])
            XCTAssertTrue(snapshot.readyToUse, "the snapshot was not made again after the crash")
            let listed = try await steps.controller.listSnapshots(Csi_V1_ListSnapshotsRequest()).entries
            XCTAssertEqual(listed.map(\.snapshot.snapshotID), [snapshot.snapshotID])
            try await steps.create("pvc-crash-restored", fromSnapshot: snapshot.snapshotID)
        }
        let local = try daemon.cli(["snapshot", "list", "pvc-crash"])
        XCTAssertEqual(local.status, 0, local.stderr)
        XCTAssertEqual(local.stdout.components(separatedBy: "csi-snapshot-").count - 1, 1,
                       "the crashed attempt's local snapshot was left: \(local.stdout)")
    }
}
