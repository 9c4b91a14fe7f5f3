import ConvoyCore

/// What other parts of the daemon add to a volume's plain life cycle: lazily restored volumes (an overlay or an
/// external origin over the backup) and snapshots (deleted with their volume). VolumeService is given its hooks
/// when it is made and calls them under the volume's lock; the hooks never call VolumeService back, so calls
/// run one way. Every method has a default that adds nothing.
public protocol VolumeLifecycleHooks: Sendable {
    /// The mountpoint to hand out instead of the driver's, or nil to mount through the driver.
    func mountpoint(for record: VolumeRecord) async throws(ConvoyError) -> String?
    /// After the last reference went away (and the driver unmounted): what became of the volume.
    func lastReferenceDropped(_ record: VolumeRecord) async -> AfterLastReference
    /// Before the volume's data is deleted (or a failed create is undone): release what is mounted over it.
    func willDelete(_ record: VolumeRecord) async throws(ConvoyError)
    /// After the volume is deleted: drop what is kept for it elsewhere.
    func didDelete(_ name: String) async
    /// At start, a volume these hooks attach again themselves before it can be mounted: reconciliation leaves
    /// its mount to them (they call `VolumeService.remountIfReferenced` once it is attached).
    func reattachesAtStart(_ record: VolumeRecord) -> Bool
}

/// The answer of `VolumeLifecycleHooks.lastReferenceDropped`.
public enum AfterLastReference: Sendable {
    case unchanged
    /// The volume changed: its record takes this driver info.
    case changed(driverInfo: [String: String])
    /// Work too long for an Unmount call: VolumeService runs it right after, once the volume is idle
    /// (`whenIdle`), and records the driver info it returns.
    case whenIdle(@Sendable (VolumeRecord) async -> [String: String]?)
}

extension VolumeLifecycleHooks {
    public func mountpoint(for record: VolumeRecord) async throws(ConvoyError) -> String? { nil }
    public func lastReferenceDropped(_ record: VolumeRecord) async -> AfterLastReference { .unchanged }
    public func willDelete(_ record: VolumeRecord) async throws(ConvoyError) {}
    public func didDelete(_ name: String) async {}
    public func reattachesAtStart(_ record: VolumeRecord) -> Bool { false }
}
