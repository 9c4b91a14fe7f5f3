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

    // MARK: Snapshots, backups, jobs

    public func createSnapshot(volume: String, name: String?) throws(ConvoyError) -> ClientAPI.Job {
        try call("POST", "/v1/snapshots", body: ClientAPI.CreateSnapshotRequest(volume: volume, name: name))
    }

    public func snapshots(volume: String?) throws(ConvoyError) -> [ClientAPI.Snapshot] {
        try call("GET", "/v1/snapshots"
                 + (try volume.map { v throws(ConvoyError) in "?volume=\(try pathSegment(v))" } ?? ""))
    }

    public func snapshot(_ name: String) throws(ConvoyError) -> ClientAPI.Snapshot {
        try call("GET", "/v1/snapshots/\(try pathSegment(name))")
    }

    public func deleteSnapshot(_ name: String) throws(ConvoyError) {
        let _: [String: String] = try call("DELETE", "/v1/snapshots/\(try pathSegment(name))")
    }

    public func createBackup(snapshot: String, destination: String) throws(ConvoyError) -> ClientAPI.Job {
        try call("POST", "/v1/backups",
                 body: ClientAPI.CreateBackupRequest(snapshot: snapshot, destination: destination))
    }

    /// A file volume backed up straight into `destination`, without a snapshot.
    public func createBackup(volume: String, destination: String) throws(ConvoyError) -> ClientAPI.Job {
        try call("POST", "/v1/backups", body: ClientAPI.CreateBackupRequest(volume: volume, destination: destination))
    }

    public func backups(destination: String, volume: String?) throws(ConvoyError) -> [ClientAPI.Backup] {
        var query = "dest=" + Self.queryEscape(destination)
        if let volume { query += "&volume=" + (try pathSegment(volume)) }
        return try call("GET", "/v1/backups?" + query)
    }

    public func inspectBackup(_ url: String) throws(ConvoyError) -> ClientAPI.Backup {
        try call("POST", "/v1/backups/inspect", body: ClientAPI.BackupURLRequest(url: url))
    }

    public func deleteBackup(_ url: String) throws(ConvoyError) -> [String: String] {
        try call("POST", "/v1/backups/delete", body: ClientAPI.BackupURLRequest(url: url))
    }

    public func forget(_ request: ClientAPI.ForgetRequest) throws(ConvoyError) -> ClientAPI.ForgetResult {
        try call("POST", "/v1/backups/forget", body: request)
    }

    public func verifyStore(_ request: ClientAPI.VerifyStoreRequest) throws(ConvoyError) -> ClientAPI.Job {
        try call("POST", "/v1/backups/verify-store", body: request)
    }

    // MARK: Encrypted stores

    public func initStore(_ request: ClientAPI.StoreKeyRequest) throws(ConvoyError) -> ClientAPI.StoreInfo {
        try call("POST", "/v1/stores/init", body: request)
    }

    public func unlockStore(_ request: ClientAPI.StoreKeyRequest) throws(ConvoyError) -> ClientAPI.StoreInfo {
        try call("POST", "/v1/stores/unlock", body: request)
    }

    public func addStoreKey(_ request: ClientAPI.StoreKeyRequest) throws(ConvoyError) -> ClientAPI.StoreKey {
        try call("POST", "/v1/stores/keys", body: request)
    }

    public func storeKeys(destination: String) throws(ConvoyError) -> [ClientAPI.StoreKey] {
        try call("GET", "/v1/stores/keys?dest=" + Self.queryEscape(destination))
    }

    public func removeStoreKey(_ id: String, destination: String) throws(ConvoyError) {
        let _: [String: String] = try call("DELETE", "/v1/stores/keys/\(try pathSegment(id))?dest="
                                           + Self.queryEscape(destination))
    }

    // MARK: Backup policies

    public func setPolicy(_ policy: ClientAPI.BackupPolicy) throws(ConvoyError) -> ClientAPI.BackupPolicy {
        try call("PUT", "/v1/policies/" + (try pathSegment(policy.volume)), body: policy)
    }

    public func policies() throws(ConvoyError) -> [ClientAPI.BackupPolicy] {
        try call("GET", "/v1/policies")
    }

    public func policy(of volume: String) throws(ConvoyError) -> ClientAPI.BackupPolicy {
        try call("GET", "/v1/policies/" + (try pathSegment(volume)))
    }

    public func deletePolicy(of volume: String) throws(ConvoyError) {
        let _: [String: String] = try call("DELETE", "/v1/policies/" + (try pathSegment(volume)))
    }

    public func verifyBackup(_ url: String) throws(ConvoyError) -> ClientAPI.Job {
        try call("POST", "/v1/backups/verify", body: ClientAPI.BackupURLRequest(url: url))
    }

    public func restoreVolume(_ request: ClientAPI.CreateVolumeRequest) throws(ConvoyError) -> ClientAPI.Job {
        try call("POST", "/v1/restores", body: request)
    }

    // MARK: BackupFS

    public func mountBackup(url: String, path: String) throws(ConvoyError) -> ClientAPI.BackupMountInfo {
        try call("POST", "/v1/backups/mount", body: ClientAPI.BackupMountRequest(url: url, path: path))
    }

    public func unmountBackup(path: String) throws(ConvoyError) {
        let _: [String: String] = try call("POST", "/v1/backups/umount",
                                           body: ClientAPI.BackupUnmountRequest(path: path))
    }

    public func backupMounts() throws(ConvoyError) -> [ClientAPI.BackupMountInfo] {
        try call("GET", "/v1/backups/mounts")
    }

    public func hydration(of volume: String) throws(ConvoyError) -> ClientAPI.Hydration {
        try call("GET", "/v1/volumes/\(try pathSegment(volume))/hydration")
    }

    public func jobs() throws(ConvoyError) -> [ClientAPI.Job] {
        try call("GET", "/v1/jobs")
    }

    /// The job; with `waitingUpTo`, answered as soon as it ends or after that many seconds with its progress.
    public func job(_ id: String, waitingUpTo seconds: Double? = nil) throws(ConvoyError) -> ClientAPI.Job {
        let path = "/v1/jobs/\(try ObjectName.validate(id, kind: "job"))"
        guard let seconds else { return try call("GET", path) }
        return try call("GET", path + "?wait=\(seconds)")
    }

    static func queryEscape(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
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
            throw ConvoyError(.internalFailure,
                              "the daemon answered HTTP \(response.status): \(response.text.prefix(200))")
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw ConvoyError(.internalFailure, "cannot read the daemon's answer: \(error)")
        }
    }
}
