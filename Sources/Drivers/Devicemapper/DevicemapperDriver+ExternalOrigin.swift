import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Lazy restore of block volumes (docs/design.md, "devicemapper"): a thin volume over an external origin, dm-thin's
/// `thin <pool> <id> <origin>`. Reads of blocks the volume never wrote come from the origin; the first write to a
/// block copies it into the pool. The origin is the backup's image (a file served by BackupFS) on a read-only loop
/// device, behind a linear device with a stable name, `<pool>-o-<volume>`: the volume's table names that device, so
/// it stays valid when a restart attaches the image to another loop device. The volume's record says it has an
/// origin (`ExternalOrigin`), so it is never activated without one, which would show zeros for its unwritten blocks.
extension DevicemapperDriver {
    public static let externalOriginKey = "ExternalOrigin"

    public func hasExternalOrigin(_ volume: DriverVolume) -> Bool {
        volume.driverInfo[Self.externalOriginKey] != nil
    }

    func originName(_ volume: String) -> String { "\(configuration.poolName)-o-\(volume)" }

    /// The volume's thin table, with its external origin when its record has one.
    func thinTable(_ volume: DriverVolume, id: String, size: UInt64, origin: String?) -> String {
        "0 \(size / 512) thin \(pool.device) \(id)" + (origin.map { " /dev/mapper/" + $0 } ?? "")
    }

    /// Makes `image` (a file) the external origin of `volume`: attaches it read-only to a loop device, points the
    /// origin device at it (detaching the loop device it replaces), and activates the volume over the origin.
    /// The volume's own blocks must read as unmapped where the image is to show (a volume created blank:
    /// `receivesImage`). Returns the info to merge into the volume's record.
    public func attachExternalOrigin(image: String,
                                     to volume: DriverVolume) async throws(ConvoyError) -> [String: String] {
        guard let id = volume.driverInfo["DeviceID"], let size = volume.driverInfo["Size"].flatMap(UInt64.init) else {
            throw ConvoyError(.stateFailure, "volume \(volume.name) has no device id or size in its record")
        }
        let loop = try await LoopDevice.attachReadOnly(image)
        let origin = originName(volume.name)
        do throws(ConvoyError) {
            let sectors = try await DMSetup.sectors(loop)
            guard sectors * 512 <= size else {
                throw ConvoyError.invalid("the backup's image (\(sectors * 512) bytes) is larger than volume "
                    + "\(volume.name) (\(size) bytes)")
            }
            let originTable = "0 \(sectors) linear \(loop) 0"
            if await DMSetup.exists(origin) {
                let replaced = try await DMSetup.dependencies(origin)
                try await DMSetup.replaceTable(origin, table: originTable, readOnly: true)
                for old in replaced where old != loop { try? await LoopDevice.detach(old) }
            } else {
                _ = try await DMSetup.run("/sbin/dmsetup", ["create", origin, "--readonly", "--table", originTable])
            }
            let device = deviceName(volume.name)
            let table = thinTable(volume, id: id, size: size, origin: origin)
            if !(await DMSetup.exists(device)) {
                try await DMSetup.create(device, table: table)
            } else if try await DMSetup.table(device).split(separator: " ").count < 6 {
                try await DMSetup.replaceTable(device, table: table)
            }
        } catch {
            if !(await DMSetup.exists(origin)) { try? await LoopDevice.detach(loop) }
            throw error
        }
        return [Self.externalOriginKey: origin]
    }

    /// Copies into the volume every pool block overlapping `regions` (byte ranges of the image that hold data)
    /// that the volume never wrote, then reloads its table without the origin and removes the origin. The volume
    /// must not be mounted: a write racing the copy of its block would be lost. Safe to repeat after a crash.
    public func finishExternalOrigin(of volume: DriverVolume, regions: [Range<UInt64>]) async throws(ConvoyError)
        -> ExternalOriginFinish {
        guard !isMounted(volume) else {
            throw ConvoyError(.inUse, "volume \(volume.name) is mounted: "
                + "its origin can only be dropped when nothing uses it")
        }
        guard let id = volume.driverInfo["DeviceID"], let size = volume.driverInfo["Size"].flatMap(UInt64.init) else {
            throw ConvoyError(.stateFailure, "volume \(volume.name) has no device id or size in its record")
        }
        let device = try await activate(volume)
        let metadata = try await poolMetadata()
        let written = Set(try await metadata.mappedBlocks(of: id))
        let blockSize = self.blockSize
        var missing: [UInt64] = []
        var last: UInt64?
        for region in regions where !region.isEmpty {
            for block in (region.lowerBound / blockSize)...((region.upperBound - 1) / blockSize)
                where block != last && !written.contains(block) && block * blockSize < size {
                missing.append(block)
                last = block
            }
        }
        let copied = try await Self.copyBlocksInPlace(missing, blockSize: blockSize, size: size, device: device)
        try await DMSetup.replaceTable(deviceName(volume.name),
                                       table: thinTable(volume, id: id, size: size, origin: nil))
        try await removeExternalOrigin(of: volume.name)
        var info = volume.driverInfo
        info[Self.externalOriginKey] = nil
        return ExternalOriginFinish(bytesCopied: copied, driverInfo: info)
    }

    /// Reads each block through the volume (from its origin, as it was never written) and writes it back, which
    /// gives it a pool block of its own holding the same bytes.
    private static func copyBlocksInPlace(_ blocks: [UInt64], blockSize: UInt64, size: UInt64,
                                          device: String) async throws(ConvoyError) -> UInt64 {
        try await BlockingIOPool.shared.run { () throws(ConvoyError) -> UInt64 in
            let fd = open(device, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else {
                throw ConvoyError(.driverFailure, "cannot open \(device): \(String(cString: strerror(errno)))")
            }
            defer { close(fd) }
            // A write that failed before (the filesystem's, while the origin was unreachable) is reported to the
            // first fsync of any new descriptor: take it now, so the final fsync reports only the copy's writes.
            _ = fsync(fd)
            var buffer = [UInt8](repeating: 0, count: Int(blockSize))
            var copied: UInt64 = 0
            for block in blocks {
                let offset = block * blockSize
                let length = Int(min(blockSize, size - offset))
                let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, length, off_t(offset)) }
                guard got == length else {
                    throw ConvoyError(.driverFailure, "cannot read block \(block) of \(device) from its origin: "
                        + "\(got < 0 ? String(cString: strerror(errno)) : "short read")")
                }
                let put = buffer.withUnsafeBytes { pwrite(fd, $0.baseAddress, length, off_t(offset)) }
                guard put == length else {
                    throw ConvoyError(.driverFailure, "cannot write block \(block) of \(device): "
                        + "\(put < 0 ? String(cString: strerror(errno)) : "short write")")
                }
                copied += UInt64(length)
            }
            guard fsync(fd) == 0 else {
                throw ConvoyError(.driverFailure, "cannot flush \(device): \(String(cString: strerror(errno)))")
            }
            return copied
        }
    }

    /// Removes the volume's origin device and the loop device under it, once the volume no longer uses it
    /// (finished, or its device removed). Nothing to do when there is none.
    public func removeExternalOrigin(of volumeName: String) async throws(ConvoyError) {
        let origin = originName(volumeName)
        guard await DMSetup.exists(origin) else { return }
        let loops = try await DMSetup.dependencies(origin)
        try await DMSetup.remove(origin)
        for loop in loops where loop.hasPrefix("/dev/loop") { try? await LoopDevice.detach(loop) }
    }

    /// Unmounts the volume and removes its device (the thin device stays in the pool): what must go before its
    /// origin can.
    public func deactivate(_ volume: DriverVolume) async throws(ConvoyError) {
        try await unmountVolume(volume)
        try await DMSetup.remove(deviceName(volume.name))
    }

    /// The filesystem on the volume's device, when blkid finds one convoy mounts (a restored image brings its
    /// own, whatever the driver's default).
    public func detectFilesystem(_ volume: DriverVolume) async throws(ConvoyError) -> String? {
        let type = await BlockFilesystem.detect(on: try await activate(volume))
        return type.flatMap { BlockFilesystem.supported.contains($0) ? $0 : nil }
    }
}
