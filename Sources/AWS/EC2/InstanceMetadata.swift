import ConvoyCore
import Foundation

/// The instance's identity from the instance metadata service, version 2 (a session token first, then the
/// reads with it). Short timeouts: off EC2 nothing answers at 169.254.169.254, and the operator should hear so soon.
public struct InstanceMetadata: Sendable {
    public struct Identity: Sendable, Equatable {
        public var instanceID: String
        public var region: String
        public var availabilityZone: String

        public init(instanceID: String, region: String, availabilityZone: String) {
            self.instanceID = instanceID
            self.region = region
            self.availabilityZone = availabilityZone
        }
    }

    let endpoint: URL
    let transport: HTTPTransport

    public init(endpoint: URL? = nil) {
        self.endpoint = endpoint ?? URL(string: "http://169.254.169.254")!  // a literal: cannot fail
        // Never through a proxy: the metadata service is link-local.
        transport = HTTPTransport(idleTimeout: 2, timeLimit: .seconds(5), maximumConnections: 1)
    }

    public func identity() async throws(ConvoyError) -> Identity {
        let token = try await fetch("PUT", "latest/api/token", headers: ["X-aws-ec2-metadata-token-ttl-seconds": "300"])
        let headers = ["X-aws-ec2-metadata-token": token]
        let instanceID = try await fetch("GET", "latest/meta-data/instance-id", headers: headers)
        let zone = try await fetch("GET", "latest/meta-data/placement/availability-zone", headers: headers)
        // Older metadata services have no placement/region: the zone minus its letter is the region.
        let region = (try? await fetch("GET", "latest/meta-data/placement/region", headers: headers))
            ?? String(zone.dropLast())
        return Identity(instanceID: instanceID, region: region, availabilityZone: zone)
    }

    private func fetch(_ method: String, _ path: String,
                       headers: [String: String]) async throws(ConvoyError) -> String {
        let url = endpoint.appendingPathComponent(path)
        let response: HTTPResponse
        do {
            response = try await transport.send(HTTPRequest(method: method, url: url, headers: headers, body: Data()))
        } catch {
            throw ConvoyError(.unavailable, "instance metadata \(url.absoluteString): \(error.description); "
                + "off EC2, give ebs.instanceid, ebs.region and ebs.az")
        }
        let text = String(decoding: response.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard response.status == 200, !text.isEmpty else {
            throw ConvoyError(.unavailable, "instance metadata \(url.absoluteString) answered HTTP \(response.status); "
                + "give ebs.instanceid, ebs.region and ebs.az")
        }
        return text
    }
}
