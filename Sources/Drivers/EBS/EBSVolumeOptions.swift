import AWS
import ConvoyCore

/// A volume's options (`size`, `type`, `iops`, `throughput`, `encrypted`, `kmskeyid`, `id`, `snapshot`, `fs`),
/// checked against EBS's rules before anything is asked of EC2, so a mistake is explained here rather than by an
/// AWS error code.
struct EBSVolumeOptions: Sendable, Equatable {
    static let keys: Set<String> = ["type", "iops", "throughput", "encrypted", "kmskeyid", "id", "snapshot", "fs"]
    /// Size limits per type, in GiB.
    static let sizeLimits: [String: ClosedRange<UInt64>] = [
        "gp2": 1...16384, "gp3": 1...16384, "io1": 4...16384, "io2": 4...16384, "st1": 125...16384,
        "sc1": 125...16384, "standard": 1...1024,
    ]

    /// nil when an existing volume is adopted or a snapshot decides the size.
    var sizeGiB: UInt64?
    var volumeType: String
    var iops: Int?
    var throughput: Int?
    var encrypted: Bool
    var kmsKeyID: String?
    var adoptVolumeID: String?
    var snapshotID: String?
    var filesystem: String

    init(_ volume: DriverVolume, configuration: EBSConfiguration) throws(ConvoyError) {
        let options = volume.options
        volumeType = try Self.volumeType(options["type"] ?? configuration.defaultVolumeType, option: "type")
        filesystem = try Self.filesystem(options["fs"] ?? configuration.defaultFilesystem, option: "fs")
        adoptVolumeID = options["id"]
        if let id = adoptVolumeID, !id.hasPrefix("vol-") {
            throw .invalid("id: '\(id)' is not an EBS volume id (vol-...)")
        }
        snapshotID = options["snapshot"]
        if let id = snapshotID, !id.hasPrefix("snap-") {
            throw .invalid("snapshot: '\(id)' is not an EBS snapshot id (snap-...)")
        }
        if adoptVolumeID != nil, options.keys.contains(where: { $0 != "id" && $0 != "fs" }) || volume.size != nil {
            throw .invalid("id: an existing volume is used as it is; "
                + "give no size, type, iops, throughput, encryption or snapshot with it")
        }
        iops = try Self.integer(options["iops"], option: "iops")
        throughput = try Self.integer(options["throughput"], option: "throughput")
        if iops != nil, !["gp3", "io1", "io2"].contains(volumeType) {
            throw .invalid("iops: only gp3, io1 and io2 volumes take iops (this one is \(volumeType))")
        }
        if ["io1", "io2"].contains(volumeType), iops == nil, adoptVolumeID == nil {
            throw .invalid("iops: \(volumeType) volumes need iops (e.g. -o iops=3000)")
        }
        if throughput != nil, volumeType != "gp3" {
            throw .invalid("throughput: only gp3 volumes take a throughput (MiB/s)")
        }
        kmsKeyID = options["kmskeyid"] ?? configuration.defaultKMSKeyID
        let explicit = try EBSConfiguration.bool(options["encrypted"], option: "encrypted")
        if explicit == false, options["kmskeyid"] != nil { throw .invalid("kmskeyid: a KMS key needs encrypted=true") }
        encrypted = explicit ?? (configuration.defaultEncrypted || options["kmskeyid"] != nil)
        if !encrypted { kmsKeyID = nil }

        guard adoptVolumeID == nil, !(snapshotID != nil && volume.size == nil) else { sizeGiB = nil; return }
        let bytes = volume.size ?? configuration.defaultVolumeSize
        let gib = (bytes + (1 << 30) - 1) >> 30
        let limits = Self.sizeLimits[volumeType] ?? 1...16384
        guard limits.contains(gib) else {
            throw .invalid("size: \(volumeType) volumes are \(limits.lowerBound) to \(limits.upperBound) GiB; "
                + "\(bytes) bytes is \(gib) GiB")
        }
        sizeGiB = gib
    }

    static func volumeType(_ text: String, option: String) throws(ConvoyError) -> String {
        guard sizeLimits[text] != nil else {
            throw .invalid("\(option): '\(text)' is not an EBS volume type; "
                + "use one of \(sizeLimits.keys.sorted().joined(separator: ", "))")
        }
        return text
    }

    static func filesystem(_ text: String, option: String) throws(ConvoyError) -> String {
        guard BlockFilesystem.supported.contains(text) else {
            throw .invalid("\(option): '\(text)' is not one of "
                + "\(BlockFilesystem.supported.sorted().joined(separator: ", "))")
        }
        return text
    }

    private static func integer(_ text: String?, option: String) throws(ConvoyError) -> Int? {
        guard let text else { return nil }
        guard let value = Int(text), value > 0 else {
            throw .invalid("\(option): '\(text)' is not a positive whole number")
        }
        return value
    }
}
