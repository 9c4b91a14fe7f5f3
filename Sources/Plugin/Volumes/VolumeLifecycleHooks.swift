import ConvoyCore

/// What a kind of volume adds to the plain life cycle (lazily restored volumes: an overlay over the backup).
/// VolumeService calls these under the volume's lock.
public protocol VolumeLifecycleHooks: Sendable {
    /// The mountpoint to hand out instead of the driver's, or nil to mount through the driver.
    func mountpoint(for record: VolumeRecord) async throws(ConvoyError) -> String?
    /// After the last reference went away: new driver info when the volume changed (nil when it did not).
    func lastReferenceDropped(_ record: VolumeRecord) async -> [String: String]?
    /// Before the volume's data is deleted: release what is mounted over it.
    func willDelete(_ record: VolumeRecord) async throws(ConvoyError)
}
