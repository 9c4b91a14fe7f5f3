import ConvoyCore
import Drivers
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The real vfs driver whose volumes are really mounted: Mount bind-mounts the volume's directory at
/// `<root>/mnt/<name>` (mount(2)), Unmount unmounts it, so "mounted exactly when referenced" is checked against
/// the kernel's mount table, not a counter.
final class BindMountDriver: VolumeDriver {
    let inner: VFSDriver
    let mountRoot: String

    init(root: String) throws {
        inner = try VFSDriver(context: DriverContext(root: root, options: [:]))
        mountRoot = root + "/mnt"
        try FileManager.default.createDirectory(atPath: mountRoot, withIntermediateDirectories: true)
    }

    var name: String { inner.name }
    var scope: VolumeScope { .local }
    var volumeOptionKeys: Set<String> { [] }
    var mountsVolumes: Bool { true }

    func target(of volume: String) -> String { mountRoot + "/" + volume }

    func info() -> [String: String] { inner.info() }
    func createVolume(_ volume: DriverVolume) async throws(ConvoyError) -> [String: String] {
        try await inner.createVolume(volume)
    }
    func deleteVolume(_ volume: DriverVolume) async throws(ConvoyError) { try await inner.deleteVolume(volume) }
    func dataExists(_ volume: DriverVolume) -> Bool { inner.dataExists(volume) }

    func mountVolume(_ volume: DriverVolume) async throws(ConvoyError) -> String {
        let source = try await inner.mountVolume(volume)
        let target = target(of: volume.name)
        mkdir(target, 0o755)
        guard mount(source, target, nil, UInt(MS_BIND), nil) == 0 else {
            throw ConvoyError(.driverFailure, "cannot bind-mount \(source) at \(target): \(errno)")
        }
        return target
    }

    func unmountVolume(_ volume: DriverVolume) async throws(ConvoyError) {
        let target = target(of: volume.name)
        guard MountInfo.isMountPoint(target) else { return }
        guard umount2(target, 0) == 0 else {
            throw ConvoyError(.driverFailure, "cannot unmount \(target): \(errno)")
        }
    }

    func isMounted(_ volume: DriverVolume) -> Bool { MountInfo.isMountPoint(target(of: volume.name)) }

    /// Every bind mount still under `<root>/mnt` goes (after a failed test).
    func detachAll() {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: mountRoot)) ?? [] {
            umount2(mountRoot + "/" + name, Int32(MNT_DETACH))
        }
    }
}
