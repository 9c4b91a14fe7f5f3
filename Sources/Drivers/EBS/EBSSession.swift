import AWS
import ConvoyCore
import Foundation
import Synchronization

/// Who this instance is and the EC2 client for its region: settled once by `start()` (options first, the
/// instance metadata service for what they do not give), then read by every call.
final class EBSSession: Sendable {
    struct Current: Sendable {
        var identity: InstanceMetadata.Identity
        var ec2: EC2Client
    }

    private let current = Mutex<Current?>(nil)

    func start(_ configuration: EBSConfiguration) async throws(ConvoyError) {
        var identity: InstanceMetadata.Identity
        if let id = configuration.instanceID, let region = configuration.region,
           let zone = configuration.availabilityZone {
            identity = .init(instanceID: id, region: region, availabilityZone: zone)
        } else {
            identity = try await InstanceMetadata(endpoint: configuration.metadataEndpoint).identity()
            identity.instanceID = configuration.instanceID ?? identity.instanceID
            identity.region = configuration.region ?? identity.region
            identity.availabilityZone = configuration.availabilityZone ?? identity.availabilityZone
        }
        guard identity.availabilityZone.hasPrefix(identity.region) else {
            throw .invalid("ebs: availability zone \(identity.availabilityZone) is not in region \(identity.region)")
        }
        var settings = EC2Client.Configuration(region: identity.region, endpoint: configuration.endpoint,
                                               credentials: try AWSCredentials.load())
        settings.retry = RetryPolicy(maxAttempts: 6, maxTotalTime: .seconds(60))
        let ec2 = try EC2Client(settings)
        current.withLock { $0 = Current(identity: identity, ec2: ec2) }
    }

    func get() throws(ConvoyError) -> Current {
        guard let value = current.withLock({ $0 }) else {
            throw ConvoyError(.internalFailure, "the ebs driver was used before it started")
        }
        return value
    }
}

/// Device names handed out and not yet visible in EC2's attachments, so two volumes attached at once never ask
/// for the same name.
final class DeviceNameReservations: Sendable {
    private let names = Mutex<Set<String>>([])

    /// The first of `candidates` neither `used` nor reserved, now reserved; nil when none is left.
    func reserve(from candidates: [String], used: Set<String>) -> String? {
        names.withLock { reserved in
            guard let name = candidates.first(where: { !used.contains($0) && !reserved.contains($0) }) else {
                return nil
            }
            reserved.insert(name)
            return name
        }
    }

    func release(_ name: String) { _ = names.withLock { $0.remove(name) } }
}
