import CSIProtocol
import Foundation
import GRPCCore
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// CSI's Controller service on a real daemon: volumes made through CSI are convoy volumes (the CLI lists them, a
/// CLI mount holds them), creates and deletes are idempotent as the spec requires, and each wrong request gets
/// the status code the spec names.
final class CSIControllerTests: CSIDaemonTestCase {

    private func createRequest(_ name: String, bytes: Int64 = 64 << 20,
                               parameters: [String: String] = [:]) -> Csi_V1_CreateVolumeRequest {
        var request = Csi_V1_CreateVolumeRequest()
        request.name = name
        request.capacityRange.requiredBytes = bytes
        request.volumeCapabilities = [mountCapability()]
        request.parameters = parameters
        return request
    }

    func testCreateIsIdempotentAndTheCLISeesTheVolume() async throws {
        try await withCSIClient(socket) { client in
            let controller = Csi_V1_Controller.Client(wrapping: client)
            let first = try await controller.createVolume(createRequest("csi-a"))
            XCTAssertEqual(first.volume.volumeID, "csi-a")
            XCTAssertEqual(first.volume.capacityBytes, 64 << 20)
            XCTAssertEqual(first.volume.volumeContext["driver"], "vfs")
            let again = try await controller.createVolume(createRequest("csi-a"))
            XCTAssertEqual(again.volume, first.volume, "a repeated create must give the same volume")

            let bigger = createRequest("csi-a", bytes: 1 << 30)
            let other = await csiStatus { _ = try await controller.createVolume(bigger) }
            XCTAssertEqual(other, .alreadyExists)
            let unknown = await csiStatus {
                _ = try await controller.createVolume(self.createRequest("csi-b", parameters: ["colour": "red"]))
            }
            XCTAssertEqual(unknown, .invalidArgument)
            var block = createRequest("csi-c")
            block.volumeCapabilities[0].block = Csi_V1_VolumeCapability.BlockVolume()
            let refusedBlock = await csiStatus { _ = try await controller.createVolume(block) }
            XCTAssertEqual(refusedBlock, .invalidArgument)
            let nameless = await csiStatus { _ = try await controller.createVolume(self.createRequest("")) }
            XCTAssertEqual(nameless, .invalidArgument)
            var inverted = createRequest("csi-d")
            inverted.capacityRange.limitBytes = 1 << 20
            let outOfRange = await csiStatus { _ = try await controller.createVolume(inverted) }
            XCTAssertEqual(outOfRange, .outOfRange)
        }
        let listed = try daemon.cli(["list"]).stdout
        XCTAssertTrue(listed.contains("csi-a"), listed)
        for refused in ["csi-b", "csi-c", "csi-d"] { XCTAssertFalse(listed.contains(refused), listed) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: daemon.root + "/vfs/csi-a"))
    }

    /// CSI names may be 128 characters of anything; a name convoy cannot use maps to one derived from it.
    func testNamesConvoyCannotUseMapToTheSameVolumeEachTime() async throws {
        try await withCSIClient(socket) { client in
            let controller = Csi_V1_Controller.Client(wrapping: client)
            for csiName in [String(repeating: "a", count: 128), "sanity test/volume 1"] {
                let first = try await controller.createVolume(createRequest(csiName))
                XCTAssertTrue(first.volume.volumeID.hasPrefix("csi-"), first.volume.volumeID)
                XCTAssertEqual(first.volume.volumeID.count, 36)
                let again = try await controller.createVolume(createRequest(csiName))
                XCTAssertEqual(again.volume.volumeID, first.volume.volumeID)
                XCTAssertTrue(try daemon.cli(["list"]).stdout.contains(first.volume.volumeID))
                var delete = Csi_V1_DeleteVolumeRequest()
                delete.volumeID = first.volume.volumeID
                _ = try await controller.deleteVolume(delete)
                XCTAssertFalse(try daemon.cli(["list"]).stdout.contains(first.volume.volumeID))
            }
            let tooLong = await csiStatus {
                _ = try await controller.createVolume(self.createRequest(String(repeating: "b", count: 129)))
            }
            XCTAssertEqual(tooLong, .invalidArgument)
        }
    }

    func testDeleteIsIdempotentAndRefusedWhileMounted() async throws {
        try await withCSIClient(socket) { client in
            let controller = Csi_V1_Controller.Client(wrapping: client)
            _ = try await controller.createVolume(createRequest("csi-held"))
            XCTAssertEqual(try daemon.cli(["mount", "csi-held"]).status, 0)
            var delete = Csi_V1_DeleteVolumeRequest()
            delete.volumeID = "csi-held"
            let held = await csiStatus { _ = try await controller.deleteVolume(delete) }
            XCTAssertEqual(held, .failedPrecondition)
            XCTAssertTrue(FileManager.default.fileExists(atPath: daemon.root + "/vfs/csi-held"))
            XCTAssertEqual(try daemon.cli(["umount", "csi-held"]).status, 0)
            _ = try await controller.deleteVolume(delete)
            XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.root + "/vfs/csi-held"))
            _ = try await controller.deleteVolume(delete)  // gone already: still success
            let nameless = await csiStatus { _ = try await controller.deleteVolume(Csi_V1_DeleteVolumeRequest()) }
            XCTAssertEqual(nameless, .invalidArgument)
        }
        XCTAssertFalse(try daemon.cli(["list"]).stdout.contains("csi-held"))
    }

    func testListPagesAndValidateAnswersPerCapability() async throws {
        try await withCSIClient(socket) { client in
            let controller = Csi_V1_Controller.Client(wrapping: client)
            for name in ["csi-1", "csi-2", "csi-3"] { _ = try await controller.createVolume(createRequest(name)) }
            var page = Csi_V1_ListVolumesRequest()
            page.maxEntries = 2
            let first = try await controller.listVolumes(page)
            XCTAssertEqual(first.entries.map(\.volume.volumeID), ["csi-1", "csi-2"])
            XCTAssertFalse(first.nextToken.isEmpty)
            page.startingToken = first.nextToken
            let second = try await controller.listVolumes(page)
            XCTAssertEqual(second.entries.map(\.volume.volumeID), ["csi-3"])
            XCTAssertEqual(second.nextToken, "")
            page.startingToken = "not-a-token"
            let stale = await csiStatus { _ = try await controller.listVolumes(page) }
            XCTAssertEqual(stale, .aborted)

            var validate = Csi_V1_ValidateVolumeCapabilitiesRequest()
            validate.volumeID = "csi-2"
            validate.volumeCapabilities = [mountCapability(.multiNodeReaderOnly)]
            let confirmed = try await controller.validateVolumeCapabilities(validate)
            XCTAssertEqual(confirmed.confirmed.volumeCapabilities, validate.volumeCapabilities)
            validate.volumeCapabilities[0].block = Csi_V1_VolumeCapability.BlockVolume()
            let refused = try await controller.validateVolumeCapabilities(validate)
            XCTAssertFalse(refused.hasConfirmed)
            XCTAssertFalse(refused.message.isEmpty)
            for id in ["csi-none", "not a convoy name"] {
                validate.volumeID = id
                let missing = await csiStatus { _ = try await controller.validateVolumeCapabilities(validate) }
                XCTAssertEqual(missing, .notFound, id)
            }
        }
    }

    /// GetCapacity answers the free space of the vfs driver's filesystem, moving with what is written there.
    func testCapacityIsTheDriversFreeSpace() async throws {
        try await withCSIClient(socket) { client in
            let controller = Csi_V1_Controller.Client(wrapping: client)
            var request = Csi_V1_GetCapacityRequest()
            request.parameters = ["driver": "vfs", "csi.storage.k8s.io/pvc/name": "ignored"]
            let before = try await controller.getCapacity(request).availableCapacity
            var expected = statvfs()
            XCTAssertEqual(statvfs(daemon.root, &expected), 0)
            let free = Int64(expected.f_bavail) * Int64(expected.f_frsize)
            XCTAssertLessThan(abs(before - free), 64 << 20, "capacity \(before) is not the filesystem's free \(free)")
            // 256 MiB written on the same filesystem (fsync'd) shows in the next answer.
            let filler = daemon.root + "/filler"
            let fd = open(filler, O_WRONLY | O_CREAT, 0o600)
            XCTAssertGreaterThanOrEqual(fd, 0)
            let chunk = [UInt8](repeating: 7, count: 1 << 20)
            for _ in 0..<256 { _ = chunk.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } }
            fsync(fd)
            close(fd)
            defer { unlink(filler) }
            let after = try await controller.getCapacity(request).availableCapacity
            XCTAssertGreaterThan(before - after, 200 << 20, "capacity did not move: \(before) → \(after)")
            request.parameters = ["driver": "no-such-driver"]
            let unknown = await csiStatus { _ = try await controller.getCapacity(request) }
            XCTAssertEqual(unknown, .invalidArgument)
            request.parameters = [:]
            request.volumeCapabilities = [mountCapability()]
            request.volumeCapabilities[0].block = Csi_V1_VolumeCapability.BlockVolume()
            let block = try await controller.getCapacity(request).availableCapacity
            XCTAssertEqual(block, 0, "capacity offered for block access, which convoy does not serve")
        }
    }

    /// A local volume is usable on its host only: created where the CO's requisite topology includes this host,
    /// refused (RESOURCE_EXHAUSTED) where it does not, and reported with its host.
    func testLocalVolumesCarryTheirHostAsTopology() async throws {
        try await withCSIClient(socket) { client in
            let controller = Csi_V1_Controller.Client(wrapping: client)
            let node = Csi_V1_Node.Client(wrapping: client)
            let here = try await node.nodeGetInfo(Csi_V1_NodeGetInfoRequest()).accessibleTopology.segments
            XCTAssertEqual(here, ["topology.convoy.dev/host": "csi-host-a"])
            var request = createRequest("csi-placed")
            var elsewhere = Csi_V1_Topology()
            elsewhere.segments = ["topology.convoy.dev/host": "csi-host-b"]
            request.accessibilityRequirements.requisite = [elsewhere]
            let refused = await csiStatus { _ = try await controller.createVolume(request) }
            XCTAssertEqual(refused, .resourceExhausted)
            var local = Csi_V1_Topology()
            local.segments = here
            request.accessibilityRequirements.requisite = [elsewhere, local]
            let volume = try await controller.createVolume(request).volume
            XCTAssertEqual(volume.accessibleTopology.map(\.segments), [here])
        }
    }

    /// A vfs volume "grows" by its record only (its size was never enforced): no node step is needed, a limit
    /// below its size is OUT_OF_RANGE, a missing volume NOT_FOUND; the CLI sees the new size.
    func testExpandingADirectoryVolumeRecordsItsSize() async throws {
        try await withCSIClient(socket) { client in
            let controller = Csi_V1_Controller.Client(wrapping: client)
            _ = try await controller.createVolume(createRequest("csi-grow"))
            var expand = Csi_V1_ControllerExpandVolumeRequest()
            expand.volumeID = "csi-grow"
            expand.capacityRange.requiredBytes = 256 << 20
            let grown = try await controller.controllerExpandVolume(expand)
            XCTAssertEqual(grown.capacityBytes, 256 << 20)
            XCTAssertFalse(grown.nodeExpansionRequired)
            _ = try await controller.controllerExpandVolume(expand)
            expand.capacityRange.requiredBytes = 0
            expand.capacityRange.limitBytes = 128 << 20
            let shrink = await csiStatus { _ = try await controller.controllerExpandVolume(expand) }
            XCTAssertEqual(shrink, .outOfRange)
            expand.volumeID = "csi-nothing"
            let missing = await csiStatus { _ = try await controller.controllerExpandVolume(expand) }
            XCTAssertEqual(missing, .notFound)
        }
        XCTAssertTrue(try daemon.cli(["inspect", "csi-grow"]).stdout.contains("\(256 << 20)"))
    }
}
