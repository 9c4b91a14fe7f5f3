import ConvoyCore
import Foundation

/// Typed calls of the client API, for the CLI and the tests.
public final class ConvoyAPIClient {
    private let http: UnixHTTPClient

    public init(socketPath: String) {
        http = UnixHTTPClient(socketPath: socketPath)
    }

    public func info() throws(ConvoyError) -> ClientAPI.Info {
        try call("GET", "/v1/info")
    }

    public func listVolumes() throws(ConvoyError) -> [ClientAPI.Volume] {
        try call("GET", "/v1/volumes")
    }

    public func createVolume(_ request: ClientAPI.CreateVolumeRequest) throws(ConvoyError) -> ClientAPI.Volume {
        try call("POST", "/v1/volumes", body: request)
    }

    public func inspectVolume(_ name: String) throws(ConvoyError) -> ClientAPI.Volume {
        try call("GET", "/v1/volumes/\(try pathSegment(name))")
    }

    public func deleteVolume(_ name: String) throws(ConvoyError) {
        let _: [String: String] = try call("DELETE", "/v1/volumes/\(try pathSegment(name))")
    }

    public func mountVolume(_ name: String) throws(ConvoyError) -> String {
        let response: ClientAPI.MountResponse = try call("POST", "/v1/volumes/\(try pathSegment(name))/mount")
        return response.mountPoint
    }

    public func unmountVolume(_ name: String) throws(ConvoyError) {
        let _: [String: String] = try call("POST", "/v1/volumes/\(try pathSegment(name))/umount")
    }

    /// Names are validated before they become part of a URL path.
    private func pathSegment(_ name: String) throws(ConvoyError) -> String {
        try ObjectName.validate(name)
    }

    private func call<T: Decodable>(_ method: String, _ path: String) throws(ConvoyError) -> T {
        try send(method, path, body: [])
    }

    private func call<T: Decodable, B: Encodable>(_ method: String, _ path: String, body: B) throws(ConvoyError) -> T {
        let data: Data
        do { data = try JSONEncoder().encode(body) } catch {
            throw ConvoyError(.internalFailure, "cannot encode the request: \(error)")
        }
        return try send(method, path, body: Array(data))
    }

    private func send<T: Decodable>(_ method: String, _ path: String, body: [UInt8]) throws(ConvoyError) -> T {
        let response = try http.request(method, path, body: body, headers: ["Content-Type": "application/json"])
        let data = Data(response.body)
        guard (200..<300).contains(response.status) else {
            if let error = try? JSONDecoder().decode(ClientAPI.ErrorBody.self, from: data) {
                throw ConvoyError(error.kind ?? .internalFailure, error.error)
            }
            throw ConvoyError(.internalFailure, "the daemon answered HTTP \(response.status): \(response.text.prefix(200))")
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw ConvoyError(.internalFailure, "cannot read the daemon's answer: \(error)")
        }
    }
}
