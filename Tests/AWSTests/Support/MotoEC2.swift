@testable import AWS
import ConvoyCore
import Foundation

/// EC2 on the moto server of scripts/test (MotoServer), with signature checks on.
enum MotoEC2 {
    static func client(secret: String? = nil) throws -> EC2Client {
        let setup = try MotoServer.setup()
        let credentials = secret.map { AWSCredentials(accessKeyID: setup.credentials.accessKeyID, secretAccessKey: $0) }
            ?? setup.credentials
        var configuration = EC2Client.Configuration(region: setup.region, endpoint: setup.endpoint,
                                                    credentials: credentials)
        configuration.retry = RetryPolicy(maxAttempts: 2, baseDelay: .milliseconds(50))
        return try EC2Client(configuration)
    }

    /// A new instance to attach volumes to (moto accepts any image id).
    static func runInstance(_ client: EC2Client) async throws -> String {
        var parameters = EC2Parameters()
        parameters["ImageId"] = "ami-12c6146b"
        parameters["MinCount"] = "1"
        parameters["MaxCount"] = "1"
        parameters["Placement.AvailabilityZone"] = "us-east-1a"
        let document = try await client.call("RunInstances", parameters)
        guard let id = document.descendant("instanceId")?.text else {
            throw MotoServer.SetupError("RunInstances named no instance")
        }
        return id
    }
}
