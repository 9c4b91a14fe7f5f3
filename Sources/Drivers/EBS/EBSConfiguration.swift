import ConvoyCore
import Foundation

/// The driver's `ebs.*` options, validated when the daemon starts. The instance's identity may be given (tests,
/// hosts without a metadata service); what is not given is read from the instance metadata service at start.
struct EBSConfiguration: Sendable {
    static let optionKeys: Set<String> = [
        "ebs.instanceid", "ebs.region", "ebs.az", "ebs.endpoint", "ebs.metadataendpoint", "ebs.defaultvolumesize",
        "ebs.defaultvolumetype", "ebs.defaultkmskeyid", "ebs.defaultencrypted", "ebs.fsfreeze", "ebs.devicedir",
        "ebs.fs", "ebs.attachtimeout", "ebs.leasettl",
    ]

    var directory: String
    var instanceID: String?
    var region: String?
    var availabilityZone: String?
    var endpoint: URL?
    var metadataEndpoint: URL?
    var defaultVolumeSize: UInt64
    var defaultVolumeType: String
    var defaultKMSKeyID: String?
    var defaultEncrypted: Bool
    var fsFreeze: Bool
    var deviceDirectory: String
    var defaultFilesystem: String
    /// How long AttachVolume may take until the block device is there.
    var attachTimeout: Duration
    /// How long a host's lease on a mounted volume lasts unrenewed (renewed every third of it); another host
    /// takes the volume over only after it has run out.
    var leaseTTL: Duration

    init(root: String, options: [String: String]) throws(ConvoyError) {
        directory = root + "/ebs"
        instanceID = options["ebs.instanceid"]
        if let id = instanceID, !id.hasPrefix("i-") {
            throw .invalid("ebs.instanceid: '\(id)' is not an instance id (i-...)")
        }
        region = options["ebs.region"]
        availabilityZone = options["ebs.az"]
        endpoint = try Self.url(options["ebs.endpoint"], option: "ebs.endpoint")
        metadataEndpoint = try Self.url(options["ebs.metadataendpoint"], option: "ebs.metadataendpoint")
        defaultVolumeSize = try ByteSize.parse(options["ebs.defaultvolumesize"] ?? "4G",
                                               option: "ebs.defaultvolumesize")
        defaultVolumeType = try EBSVolumeOptions.volumeType(options["ebs.defaultvolumetype"] ?? "gp3",
                                                            option: "ebs.defaultvolumetype")
        defaultKMSKeyID = options["ebs.defaultkmskeyid"]
        defaultEncrypted = try Self.bool(options["ebs.defaultencrypted"], option: "ebs.defaultencrypted") ?? false
        fsFreeze = try Self.bool(options["ebs.fsfreeze"], option: "ebs.fsfreeze") ?? false
        deviceDirectory = try PathGuard.absoluteDirectory(options["ebs.devicedir"] ?? "/dev/disk/by-id",
                                                          option: "ebs.devicedir")
        defaultFilesystem = try EBSVolumeOptions.filesystem(options["ebs.fs"] ?? "ext4", option: "ebs.fs")
        let seconds = options["ebs.attachtimeout"] ?? "300"
        guard let value = Int(seconds), (1...3600).contains(value) else {
            throw .invalid("ebs.attachtimeout: '\(seconds)' is not a number of seconds between 1 and 3600")
        }
        attachTimeout = .seconds(value)
        let ttl = options["ebs.leasettl"] ?? "30"
        guard let leaseSeconds = Int(ttl.hasSuffix("s") ? String(ttl.dropLast()) : ttl),
              (3...3600).contains(leaseSeconds) else {
            throw .invalid("ebs.leasettl: '\(ttl)' is not a number of seconds between 3 and 3600")
        }
        leaseTTL = .seconds(leaseSeconds)
    }

    static func url(_ text: String?, option: String) throws(ConvoyError) -> URL? {
        guard let text else { return nil }
        return try Redaction.endpoint(text, option: option)
    }

    static func bool(_ text: String?, option: String) throws(ConvoyError) -> Bool? {
        guard let text else { return nil }
        switch text.lowercased() {
        case "true", "yes", "1": return true
        case "false", "no", "0": return false
        default: throw .invalid("\(option): '\(text)' is not true or false")
        }
    }
}
