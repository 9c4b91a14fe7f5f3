import ConvoyCore
@testable import Drivers
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The devicemapper driver on a real dm-thin pool. The host kernel here has no device-mapper: `scripts/test` runs
/// this class inside a VM (`scripts/vm-run`) with CONVOY_REQUIRE_DM=1, where a missing device-mapper is a failure;
/// elsewhere the class is skipped.
final class DevicemapperDriverTests: XCTestCase {
    var root = ""
    var pool = ""

    override func setUpWithError() throws {
        if access("/dev/mapper/control", F_OK) != 0 { _ = try? shell("modprobe dm-thin-pool") }
        guard access("/dev/mapper/control", F_OK) == 0 else {
            if ProcessInfo.processInfo.environment["CONVOY_REQUIRE_DM"] == "1" {
                XCTFail("CONVOY_REQUIRE_DM=1 but this kernel has no device-mapper")
                return
            }
            throw XCTSkip("no device-mapper in this kernel; scripts/test runs these tests in a VM")
        }
        root = "/tmp/dmt-" + String(UUID().uuidString.prefix(8))
        pool = "cvt-" + String(UUID().uuidString.prefix(8)).lowercased()
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDown() {
        guard !pool.isEmpty else { return }
        // Everything this test made: mounts, devices of the pool, the pool, its loop devices, files.
        _ = try? shell("""
            for m in $(awk '$5 ~ "^\(root)/" {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m"; done
            for d in $(dmsetup ls | awk '$1 ~ "^\(pool)-" {print $1}'); do dmsetup remove --force "$d"; done
            dmsetup remove --force \(pool) 2>/dev/null
            for f in \(root)/devicemapper/data.img \(root)/devicemapper/metadata.img; do
              for l in $(losetup -j "$f" | cut -d: -f1); do losetup -d "$l"; done
            done
            rm -rf \(root)
            """)
    }

    @discardableResult
    func shell(_ script: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw NSError(domain: "shell", code: Int(process.terminationStatus),
                          userInfo: [NSLocalizedDescriptionKey: "\(script): \(text)"])
        }
        return text
    }

    func makeDriver() async throws -> DevicemapperDriver {
        let driver = try DevicemapperDriver(context: DriverContext(root: root, options: [
            "dm.thinpoolname": pool, "dm.thinpoolblocksize": "64K", "dm.defaultvolumesize": "64M"]))
        try await driver.start()
        return driver
    }

    func volume(_ name: String, _ info: [String: String] = [:]) -> DriverVolume {
        DriverVolume(name: name, size: nil, options: [:], driverInfo: info)
    }

    func testVolumeLifeCycleOnARealThinPool() async throws {
        let driver = try await makeDriver()
        let info = try await driver.createVolume(volume("v1"))
        XCTAssertEqual(info["Size"], "\(64 << 20)")
        XCTAssertEqual(try shell("blkid -o value -s TYPE \(info["Device"] ?? "")")
                           .trimmingCharacters(in: .whitespacesAndNewlines), "ext4")
        let v1 = volume("v1", info)
        let path = try await driver.mountVolume(v1)
        XCTAssertEqual(path, root + "/devicemapper/mounts/v1")
        XCTAssertTrue(driver.isMounted(v1))
        let freeBefore = try await driver.availableBytes() ?? 0
        try shell("head -c 3000000 /dev/urandom > \(path)/data && sha256sum \(path)/data > \(root)/sum && sync")
        // The pool's free data space (CSI's GetCapacity) shrinks by at least what was written.
        let freeAfter = try await driver.availableBytes() ?? 0
        XCTAssertGreaterThan(freeBefore, 0)
        XCTAssertGreaterThanOrEqual(freeBefore - min(freeBefore, freeAfter), 3_000_000,
                                    "free pool space \(freeBefore) → \(freeAfter) after writing 3 MB")
        try await driver.unmountVolume(v1)
        XCTAssertFalse(driver.isMounted(v1))
        _ = try await driver.mountVolume(v1)
        try shell("sha256sum -c \(root)/sum")
        // Grown while mounted: the device to the new length, then the filesystem online, the data intact.
        let grownInfo = try await driver.expandVolume(v1, to: 200 << 20)
        XCTAssertEqual(grownInfo["Size"], "\(200 << 20)")
        XCTAssertEqual(try shell("blockdev --getsize64 \(info["Device"] ?? "")")
                           .trimmingCharacters(in: .whitespacesAndNewlines), "\(200 << 20)")
        try await driver.expandFilesystem(volume("v1", grownInfo))
        let blocks = try shell("df -B1 --output=size \(path) | tail -1").trimmingCharacters(in: .whitespaces)
        XCTAssertGreaterThan(UInt64(blocks.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, 150 << 20)
        try shell("sha256sum -c \(root)/sum")

        // Ids are never reused: a volume created after a delete gets a new one.
        try await driver.deleteVolume(v1)
        XCTAssertFalse(driver.isMounted(v1))
        XCTAssertFalse(try shell("dmsetup ls").contains("\(pool)-v-v1"))
        let second = try await driver.createVolume(volume("v2"))
        XCTAssertGreaterThan(Int(second["DeviceID"] ?? "") ?? 0, Int(info["DeviceID"] ?? "") ?? 0)
        // The pool's own view: exactly one thin device left.
        try await driver.deleteVolume(volume("v2", second))
    }

    func testSnapshotStaysFrozenWhileTheOriginChanges() async throws {
        let driver = try await makeDriver()
        let info = try await driver.createVolume(volume("v1"))
        let origin = volume("v1", info)
        let path = try await driver.mountVolume(origin)
        try shell("echo before > \(path)/a && sync")
        let snapshot = try await driver.createSnapshot("s1", of: origin)
        XCTAssertEqual(snapshot["OriginDeviceID"], info["DeviceID"])
        try shell("echo after > \(path)/a && echo new > \(path)/b && sync")

        let device = try await driver.activateSnapshot("s1", info: snapshot)
        try shell("mkdir -p \(root)/snap && mount -o ro,noload \(device) \(root)/snap")
        XCTAssertEqual(try shell("cat \(root)/snap/a"), "before\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/snap/b"))
        XCTAssertEqual(try shell("cat \(path)/a"), "after\n")
        try shell("umount \(root)/snap")
        try await driver.deleteSnapshot("s1", info: snapshot, of: origin)
        XCTAssertFalse(try shell("dmsetup ls").contains("\(pool)-s-s1"))
    }

    /// A pool has one metadata snapshot: readers at once (two block backups, a backup and a lazy finish) take
    /// turns instead of releasing it under each other, and one left reserved by a killed daemon is released at
    /// start.
    func testConcurrentReadersOfThePoolMetadataEachGetTheirAnswer() async throws {
        let driver = try await makeDriver()
        let info = try await driver.createVolume(volume("v1"))
        let v1 = volume("v1", info)
        let path = try await driver.mountVolume(v1)
        try shell("head -c 4000000 /dev/urandom > \(path)/a && sync")
        let first = try await driver.createSnapshot("s1", of: v1)
        try shell("head -c 2000000 /dev/urandom > \(path)/b && sync")
        let second = try await driver.createSnapshot("s2", of: v1)
        let full = try await driver.changedBlocks(of: second, since: nil)
        let delta = try await driver.changedBlocks(of: second, since: first)
        XCTAssertFalse(delta.read.isEmpty)
        XCTAssertLessThan(delta.read.count, full.read.count)

        try shell("dmsetup message \(pool) 0 reserve_metadata_snap")
        let restarted = try await makeDriver()
        try await withThrowingTaskGroup(of: (Bool, BlockChanges).self) { group in
            for index in 0..<8 {
                group.addTask {
                    let isDelta = index % 2 == 1
                    return (isDelta, try await restarted.changedBlocks(of: second, since: isDelta ? first : nil))
                }
            }
            for try await (isDelta, answer) in group { XCTAssertEqual(answer, isDelta ? delta : full) }
        }
        try await driver.unmountVolume(v1)
        try await driver.deleteSnapshot("s1", info: first, of: v1)
        try await driver.deleteSnapshot("s2", info: second, of: v1)
        try await driver.deleteVolume(v1)
    }

    func testARestartActivatesThePoolAndVolumesFromTheirRecords() async throws {
        var driver = try await makeDriver()
        let info = try await driver.createVolume(volume("v1", [:]))
        let v1 = volume("v1", info)
        let path = try await driver.mountVolume(v1)
        try shell("echo kept > \(path)/f")
        try await driver.unmountVolume(v1)
        // As after a reboot: no devices, no pool, no loop devices; only the files and the volume's record.
        try shell("""
            dmsetup remove \(pool)-v-v1 && dmsetup remove \(pool)
            for f in \(root)/devicemapper/*.img; do \
            for l in $(losetup -j "$f" | cut -d: -f1); do losetup -d "$l"; done; done
            """)
        driver = try await makeDriver()
        _ = try await driver.mountVolume(v1)
        XCTAssertEqual(try shell("cat \(path)/f"), "kept\n")
        // A third volume still gets a fresh id after the restart.
        let next = try await driver.createVolume(volume("v3"))
        XCTAssertGreaterThan(Int(next["DeviceID"] ?? "") ?? 0, Int(info["DeviceID"] ?? "") ?? 0)
    }

    func testADamagedPoolIsRefusedWithTheRepairCommand() async throws {
        let driver = try await makeDriver()
        _ = try await driver.createVolume(volume("v1"))
        // Deactivate everything, then damage the metadata's superblock.
        try shell("""
            dmsetup remove \(pool)-v-v1 && dmsetup remove \(pool)
            dd if=/dev/urandom of=\(root)/devicemapper/metadata.img bs=4096 count=1 conv=notrunc status=none
            """)
        do {
            _ = try await makeDriver()
            XCTFail("a pool with damaged metadata must not be activated")
        } catch let error as ConvoyError {
            XCTAssertTrue(error.message.contains("thin_check /dev/loop"), error.message)
            XCTAssertTrue(error.message.contains("cannot activate thin pool \(pool)"), error.message)
        }
    }

    func testAnXfsVolume() async throws {
        let driver = try await makeDriver()
        var request = DriverVolume(name: "x1", size: 320 << 20, options: ["fs": "xfs"])
        request.driverInfo = try await driver.createVolume(request)
        XCTAssertEqual(request.driverInfo["FS"], "xfs")
        XCTAssertEqual(try shell("blkid -o value -s TYPE \(request.driverInfo["Device"] ?? "")")
                           .trimmingCharacters(in: .whitespacesAndNewlines), "xfs")
        let path = try await driver.mountVolume(request)
        try shell("echo on-xfs > \(path)/f && sync")
        try await driver.unmountVolume(request)
        _ = try await driver.mountVolume(request)
        XCTAssertEqual(try shell("cat \(path)/f"), "on-xfs\n")
        // xfs grows only mounted (xfs_growfs).
        request.driverInfo = try await driver.expandVolume(request, to: 640 << 20)
        try await driver.expandFilesystem(request)
        let size = try shell("df -B1 --output=size \(path) | tail -1").trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertGreaterThan(UInt64(size) ?? 0, 500 << 20, "xfs did not grow: \(size) bytes")
        XCTAssertEqual(try shell("cat \(path)/f"), "on-xfs\n")
        try await driver.deleteVolume(request)
    }
}
