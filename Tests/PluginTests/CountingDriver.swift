import ConvoyCore
import Drivers
import Foundation
import Synchronization

/// The real vfs driver, instrumented: it counts mount and unmount calls and reports volumes as mounted only
/// between them, so the service's reference counting (first Mount mounts, last Unmount unmounts) is observable.
/// Data operations go to the real directory driver.
final class CountingDriver: VolumeDriver {
    let inner: VFSDriver
    private let state = Mutex((mounts: 0, unmounts: 0, mounted: Set<String>()))

    init(root: String) throws {
        inner = try VFSDriver(context: DriverContext(root: root, options: [:]))
    }

    var name: String { inner.name }
    var scope: VolumeScope { .local }
    var volumeOptionKeys: Set<String> { ["fs"] }
    var mountsVolumes: Bool { true }
    var mounts: Int { state.withLock { $0.mounts } }
    var unmounts: Int { state.withLock { $0.unmounts } }

    func info() -> [String: String] { inner.info() }
    func createVolume(_ volume: DriverVolume) async throws(ConvoyError) -> [String: String] {
        try await inner.createVolume(volume)
    }
    func deleteVolume(_ volume: DriverVolume) async throws(ConvoyError) { try await inner.deleteVolume(volume) }

    func mountVolume(_ volume: DriverVolume) async throws(ConvoyError) -> String {
        let mountpoint = try await inner.mountVolume(volume)
        state.withLock { $0.mounts += 1; $0.mounted.insert(volume.name) }
        return mountpoint
    }

    func unmountVolume(_ volume: DriverVolume) async throws(ConvoyError) {
        state.withLock { $0.unmounts += 1; $0.mounted.remove(volume.name) }
    }

    func dataExists(_ volume: DriverVolume) -> Bool { inner.dataExists(volume) }
    func isMounted(_ volume: DriverVolume) -> Bool { state.withLock { $0.mounted.contains(volume.name) } }
}
