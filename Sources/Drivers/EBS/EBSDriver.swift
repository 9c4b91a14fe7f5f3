import AWS
import ConvoyCore
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// `ebs`: each volume is an EBS volume in this instance's availability zone, attached to this instance from
/// create to delete, with a filesystem mounted at `<root>/ebs/mounts/<name>` while it has references. Snapshots
/// are EBS snapshots; a backup is an EBS snapshot kept as one (`ebs://<region>/<snap-id>`).
///
/// The volume's record (driver info) holds its EBS volume id, device name, filesystem and size; EC2 holds the rest.
public struct EBSDriver: NativeBackupDriver {
    public static let driverName = "ebs"
    public static var optionKeys: Set<String> { EBSConfiguration.optionKeys }

    public let name = Self.driverName
    /// An EBS volume attaches to one instance at a time.
    public let scope = VolumeScope.local
    public let volumeOptionKeys = EBSVolumeOptions.keys
    public let mountsVolumes = true
    public static let backupSchemeName = "ebs"
    public let backupScheme = Self.backupSchemeName
    let configuration: EBSConfiguration
    let session = EBSSession()
    let reservations = DeviceNameReservations()
    let leases: EBSLeaseKeeper
    let logger: Logger

    public init(context: DriverContext) throws(ConvoyError) {
        configuration = try EBSConfiguration(root: context.root, options: context.options)
        logger = context.logger
        leases = EBSLeaseKeeper(directory: configuration.directory + "/leases",
                                host: context.hostID.isEmpty ? ProcessInfo.processInfo.hostName : context.hostID,
                                ttl: configuration.leaseTTL, logger: context.logger,
                                events: Self.ebsLeaseEvents(context.leaseEvents))
    }

    private static func ebsLeaseEvents(_ events: LeaseEvents?) -> (@Sendable (_ takeover: Bool) -> Void)? {
        guard let events else { return nil }
        return { takeover in events("ebs", takeover) }
    }

    public func start() async throws(ConvoyError) {
        try await session.start(configuration)
        try Filesystem.makeDirectory(mountsDirectory, mode: 0o700)
        try leases.load()
        await tagInstance()
        Task { await keepLeases() }
    }

    public func info() -> [String: String] {
        let identity = (try? session.get())?.identity
        return ["InstanceID": identity?.instanceID ?? "", "Region": identity?.region ?? "",
                "AvailabilityZone": identity?.availabilityZone ?? "",
                "DefaultVolumeSize": "\(configuration.defaultVolumeSize)",
                "DefaultVolumeType": configuration.defaultVolumeType,
                "DefaultEncrypted": "\(configuration.defaultEncrypted)", "FSFreeze": "\(configuration.fsFreeze)",
                "DeviceDirectory": configuration.deviceDirectory, "Scope": scope.rawValue,
                "LeaseTTL": "\(configuration.leaseTTL.components.seconds)s", "HostID": leases.host]
    }

    var mountsDirectory: String { configuration.directory + "/mounts" }

    func mountpoint(_ volume: DriverVolume) throws(ConvoyError) -> String {
        try PathGuard.child(of: mountsDirectory, named: volume.name)
    }

    /// Attaches to this host's instance, or to `instanceID`'s (a CSI controller attaching for a node).
    func attacher(for instanceID: String? = nil) throws(ConvoyError) -> EBSAttacher {
        let current = try session.get()
        return EBSAttacher(instanceID: instanceID ?? current.identity.instanceID, ec2: current.ec2,
                           finder: EBSDeviceFinder(directory: configuration.deviceDirectory),
                           reservations: reservations, timeout: configuration.attachTimeout)
    }

    static func volumeID(_ volume: DriverVolume) throws(ConvoyError) -> String {
        guard let id = volume.driverInfo["VolumeID"] else {
            throw ConvoyError(.stateFailure, "volume \(volume.name) has no EBS volume id in its record")
        }
        return id
    }

    // MARK: Volumes

    /// Creates (or adopts) the EBS volume, attaches it, formats it when it is new. On failure whatever this call
    /// created is detached and deleted.
    public func createVolume(_ volume: DriverVolume) async throws(ConvoyError) -> [String: String] {
        let options = try EBSVolumeOptions(volume, configuration: configuration)
        let current = try session.get()
        let (ec2, zone) = (current.ec2, current.identity.availabilityZone)
        let attacher = try attacher()
        if options.adoptVolumeID == nil, let existing = try await volumeNamed(volume.name, zone: zone, ec2: ec2) {
            return try useExisting(existing, for: volume, options: options)
        }
        let ebsVolume: EC2Volume
        if let id = options.adoptVolumeID {
            guard let existing = try await ec2.volume(id) else {
                throw .notFound("id: EBS volume \(id) does not exist")
            }
            guard existing.availabilityZone == zone else {
                throw .invalid("id: EBS volume \(id) is in \(existing.availabilityZone); this instance is in \(zone)")
            }
            ebsVolume = existing
        } else {
            ebsVolume = try await ec2.createVolume(.init(
                availabilityZone: zone, sizeGiB: options.sizeGiB, volumeType: options.volumeType, iops: options.iops,
                throughput: options.throughput, encrypted: options.encrypted, kmsKeyID: options.kmsKeyID,
                snapshotID: options.snapshotID,
                tags: ["Name": volume.name, Self.nameTag: volume.name, Self.instanceTag: current.identity.instanceID]))
        }
        let created = options.adoptVolumeID == nil
        do throws(ConvoyError) {
            let available = try await waitUntilUsable(ebsVolume, ec2: ec2)
            let device = try await attacher.attach(ebsVolume.id)
            let filesystem = try await prepareFilesystem(on: device, of: ebsVolume, options: options,
                                                         created: created, raw: volume.receivesImage)
            // An adopted volume gains the name tag too, so another host's Create of the name finds it.
            try await ec2.createTags([ebsVolume.id], created ? [Self.filesystemTag: filesystem]
                                                             : [Self.nameTag: volume.name, Self.adoptedTag: "true"])
            return ["VolumeID": ebsVolume.id, "FS": filesystem, "Size": "\(available.sizeGiB << 30)",
                    "Adopted": created ? "false" : "true", "AvailabilityZone": zone]
        } catch {
            try? await attacher.detach(ebsVolume.id)
            if created { try? await ec2.deleteVolume(ebsVolume.id) }
            throw error
        }
    }

    /// The filesystem the volume is used with: made on a new blank volume (none on a raw one, `receivesImage`),
    /// else the one its data holds. A volume from a snapshot without a filesystem is raw (a raw volume's
    /// snapshot); an adopted one without a filesystem gets one.
    private func prepareFilesystem(on device: String, of ebsVolume: EC2Volume, options: EBSVolumeOptions,
                                   created: Bool, raw: Bool) async throws(ConvoyError) -> String {
        if created && options.snapshotID == nil {
            if raw { return RawBlock.filesystem }
            try await BlockFilesystem.make(options.filesystem, on: device)
            return options.filesystem
        }
        guard let found = await BlockFilesystem.detect(on: device) else {
            if created || raw { return RawBlock.filesystem }
            try await BlockFilesystem.make(options.filesystem, on: device)
            return options.filesystem
        }
        guard BlockFilesystem.supported.contains(found) else {
            throw ConvoyError.invalid("EBS volume \(ebsVolume.id) holds a \(found) filesystem; "
                + "the ebs driver mounts \(BlockFilesystem.supported.sorted().joined(separator: " and "))")
        }
        return found
    }

    /// Waits until the volume can be attached: `available`, or already attached here (an adopted volume). Larger
    /// volumes (and those made from snapshots) take longer to create: a minute plus a second per GiB.
    private func waitUntilUsable(_ volume: EC2Volume, ec2: EC2Client) async throws(ConvoyError) -> EC2Volume {
        let instance = try session.get().identity.instanceID
        let timeout = Duration.seconds(60) + .seconds(Int(min(volume.sizeGiB, 16384)))
        return try await EBSWait.until("EBS volume \(volume.id) becoming available",
                                       timeout: timeout) { () async throws(ConvoyError) -> EC2Volume? in
            guard let now = try await ec2.volume(volume.id) else {
                throw .notFound("EBS volume \(volume.id) disappeared")
            }
            if now.state == "error" {
                throw ConvoyError(.driverFailure, "EBS volume \(volume.id) is in state error; EC2 could not create it")
            }
            if now.state == "available" || now.attachments.contains(where: { $0.instanceID == instance }) { return now }
            return nil
        }
    }

    /// Tags a volume with the instance whose convoy created it, so that a create interrupted before its volume id
    /// was recorded can find what it made (and only that).
    static let instanceTag = "convoy-instance"
    /// The convoy volume name: one EBS volume per name in an availability zone, whichever host made it.
    static let nameTag = "convoy-volume"
    /// The filesystem convoy made on it, for a host that finds the volume without having made it.
    static let filesystemTag = "convoy-fs"
    /// On a volume adopted with `id=`: whichever host deletes it only gives it back (detached, untagged).
    static let adoptedTag = "convoy-adopted"

    /// The EBS volume that carries convoy volume `name` in this zone, made by any host (nil: none yet). A Create
    /// of that name on another host (a swarm service's volume spec is created on every node) uses it.
    func volumeNamed(_ name: String, zone: String, ec2: EC2Client) async throws(ConvoyError) -> EC2Volume? {
        let found = try await ec2.describeVolumes(filters: [("tag:" + Self.nameTag): [name]]).filter {
            $0.availabilityZone == zone && !["deleting", "deleted", "error"].contains($0.state)
        }
        guard found.count <= 1 else {
            throw .conflict("volume \(name): EBS volumes \(found.map(\.id).sorted().joined(separator: ", ")) all "
                + "carry this name (tag \(Self.nameTag)); delete all but one, or adopt one with -o id=vol-...")
        }
        return found.first
    }

    /// A volume of this name another host made: recorded here as it is, attached here only when mounted (under the
    /// lease). Options that contradict it are refused rather than ignored.
    private func useExisting(_ existing: EC2Volume, for volume: DriverVolume,
                             options: EBSVolumeOptions) throws(ConvoyError) -> [String: String] {
        let maker = existing.tags[Self.instanceTag].map { " (made by instance \($0))" } ?? ""
        if options.snapshotID != nil {
            throw .conflict("volume \(volume.name): EBS volume \(existing.id)\(maker) already carries this name; "
                + "a volume made from a snapshot needs a name of its own")
        }
        if volume.size != nil, let size = options.sizeGiB, size != existing.sizeGiB {
            throw .conflict("volume \(volume.name) exists as EBS volume \(existing.id)\(maker) of "
                + "\(existing.sizeGiB) GiB, not \(size) GiB")
        }
        if volume.options["type"] != nil, existing.volumeType != options.volumeType {
            throw .conflict("volume \(volume.name) exists as EBS volume \(existing.id)\(maker) of type "
                + "\(existing.volumeType ?? "?"), not \(options.volumeType)")
        }
        logger.info("ebs: volume \(volume.name) is EBS volume \(existing.id)\(maker); attached here when mounted")
        return Self.driverInfo(of: existing)
    }

    /// What this host records of an EBS volume another host made.
    static func driverInfo(of existing: EC2Volume) -> [String: String] {
        ["VolumeID": existing.id, "FS": existing.tags[Self.filesystemTag] ?? "", "Size": "\(existing.sizeGiB << 30)",
         "Adopted": existing.tags[Self.adoptedTag] == "true" ? "true" : "false",
         "AvailabilityZone": existing.availabilityZone]
    }

    /// Unmounts, detaches, and deletes the EBS volume (an adopted one is only detached: it was not ours to
    /// delete). A volume EC2 no longer knows counts as deleted. Without a volume id in the record (a create
    /// interrupted by a crash), the volumes this instance's convoy created under that name are removed.
    public func deleteVolume(_ volume: DriverVolume) async throws(ConvoyError) {
        try await checkNotLeasedElsewhere(volume)
        try await unmountVolume(volume)
        if volume.driverInfo["VolumeID"] == nil {
            let current = try session.get()
            let leftovers = try await current.ec2.describeVolumes(filters: [
                "tag:\(Self.nameTag)": [volume.name], "tag:\(Self.instanceTag)": [current.identity.instanceID]])
            for leftover in leftovers {
                try await attacher().detach(leftover.id)
                try await current.ec2.deleteVolume(leftover.id)
            }
        }
        if let id = volume.driverInfo["VolumeID"] {
            try await attacher().detachEverywhere(id)
            if volume.driverInfo["Adopted"] != "true" {
                do {
                    try await session.get().ec2.deleteVolume(id)
                } catch where error.kind == .notFound {
                    // Already deleted (an interrupted delete being finished).
                }
            } else {
                // Given back as it was adopted: no longer a convoy volume of that name.
                try? await session.get().ec2.deleteTags([id], keys: [Self.nameTag, Self.adoptedTag])
            }
        }
        if let path = try? mountpoint(volume) { rmdir(path) }
        try leases.forget(volume.name)
    }

    /// The record is trusted (no EC2 call here), so a volume is never forgotten because EC2 was slow to answer.
    public func dataExists(_ volume: DriverVolume) -> Bool { volume.driverInfo["VolumeID"] != nil }

    public func isMounted(_ volume: DriverVolume) -> Bool {
        guard let path = try? mountpoint(volume) else { return false }
        return MountInfo.isMountPoint(path)
    }
}
