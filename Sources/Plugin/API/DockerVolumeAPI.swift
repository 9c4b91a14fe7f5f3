import ConvoyCore
import Hummingbird
import Logging

/// Docker's volume plugin protocol (docs/design.md, "Decisions") on the plugin socket: every call is
/// `POST /<Method>`, every answer HTTP 200 with the plugin media type, failures carried in `Err`.
struct DockerVolumeAPI {
    static let contentType = "application/vnd.docker.plugins.v1+json"

    let services: Services
    let logger: Logger
    var volumes: VolumeService { services.volumes }

    struct Request: Decodable {
        var name: String?
        var id: String?
        var opts: [String: String]?
        enum CodingKeys: String, CodingKey { case name = "Name", id = "ID", opts = "Opts" }
    }

    struct VolumeInfo: Encodable {
        var name: String
        var mountpoint: String
        var createdAt: String?
        var status: [String: StatusValue]?
        enum CodingKeys: String, CodingKey {
            case name = "Name", mountpoint = "Mountpoint", createdAt = "CreatedAt", status = "Status"
        }
    }

    /// Status values are free-form for Docker; numbers stay numbers so `docker volume inspect` reads naturally.
    enum StatusValue: Encodable {
        case text(String)
        case number(UInt64)

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .text(let value): try container.encode(value)
            case .number(let value): try container.encode(value)
            }
        }
    }

    struct Reply: Encodable {
        var err: String?
        var implements: [String]?
        var mountpoint: String?
        var volume: VolumeInfo?
        var volumes: [VolumeInfo]?
        var capabilities: [String: String]?
        enum CodingKeys: String, CodingKey {
            case err = "Err", implements = "Implements", mountpoint = "Mountpoint", volume = "Volume"
            case volumes = "Volumes", capabilities = "Capabilities"
        }
    }

    func register(on router: Router<BasicRequestContext>) {
        let (volumes, restores, lazy) = (services.volumes, services.restores, services.lazy)
        route(router, "Plugin.Activate") { _ in Reply(implements: ["VolumeDriver"]) }
        route(router, "VolumeDriver.Capabilities") { _ in
            Reply(capabilities: ["Scope": volumes.scope.rawValue])
        }
        route(router, "VolumeDriver.Create") { request throws(ConvoyError) in
            let name = try requireName(request)
            var options = request.opts ?? [:]
            // A backup policy given with the volume (backup-every, backup-dest, backup-keep-*): checked first, set
            // once the volume exists.
            let policy = try await PolicyOptions.take(from: &options, volume: name).asyncMap {
                policy throws(ConvoyError) in try await services.scheduler.validated(policy, fromDocker: true)
            }
            let lazyFlag = options.removeValue(forKey: "lazy")
            if let backup = options.removeValue(forKey: "backup") {
                // Docker calls Create again for a volume that exists: that is not a second restore.
                if (try? volumes.get(name))?.state == .ready {
                    if let policy { _ = try await services.scheduler.set(policy) }
                    return Reply()
                }
                if try Self.flag(lazyFlag, option: "lazy") {
                    _ = try await lazy.create(name: name, backup: backup, options: options)
                } else {
                    _ = try await restores.restore(name: name, backup: backup, options: options, wait: true)
                }
            } else if lazyFlag != nil {
                throw .invalid("option lazy needs backup=URL: "
                    + "it makes a restored volume usable before its data is local")
            } else {
                _ = try await services.createVolume(name: name, options: options)
            }
            if let policy { _ = try await services.scheduler.set(policy) }
            return Reply()
        }
        route(router, "VolumeDriver.Remove") { request throws(ConvoyError) in
            try await volumes.remove(try requireName(request), fromDocker: true)
            return Reply()
        }
        route(router, "VolumeDriver.Mount") { request throws(ConvoyError) in
            let mountpoint = try await volumes.mount(try requireName(request), referenceID: request.id ?? "")
            return Reply(mountpoint: mountpoint)
        }
        route(router, "VolumeDriver.Unmount") { request throws(ConvoyError) in
            try await volumes.unmount(try requireName(request), referenceID: request.id ?? "")
            return Reply()
        }
        route(router, "VolumeDriver.Path") { request throws(ConvoyError) in
            let record = try volumes.get(try requireName(request))
            return Reply(mountpoint: record.mountpoint ?? "")
        }
        route(router, "VolumeDriver.Get") { request throws(ConvoyError) in
            let record = try volumes.get(try requireName(request))
            return Reply(volume: Self.info(record, detailed: true,
                                           hydration: await lazy.hydration(of: record.name),
                                           driverStatus: await services.status(of: record)))
        }
        route(router, "VolumeDriver.List") { _ throws(ConvoyError) in
            Reply(volumes: try volumes.list().map { Self.info($0, detailed: false) })
        }
    }

    static func flag(_ value: String?, option: String) throws(ConvoyError) -> Bool {
        switch value?.lowercased() {
        case nil, "false", "0", "no": return false
        case "true", "1", "yes": return true
        case let other?: throw .invalid("option \(option): '\(other)' is not true or false")
        }
    }

    static func info(_ record: VolumeRecord, detailed: Bool, hydration: ClientAPI.Hydration? = nil,
                     driverStatus: [String: String] = [:]) -> VolumeInfo {
        guard detailed else { return VolumeInfo(name: record.name, mountpoint: record.mountpoint ?? "") }
        var status: [String: StatusValue] = [
            "driver": .text(record.driver),
            "state": .text(record.state.rawValue),
            "references": .number(UInt64(record.references.count)),
        ]
        if record.size > 0 { status["size"] = .number(record.size) }
        for (key, value) in driverStatus where status[key] == nil { status[key] = .text(value) }
        if let hydration {
            status["hydration"] = .text(hydration.state.rawValue)
            status["hydratedBytes"] = .number(hydration.bytesDone)
            status["hydrationTotalBytes"] = .number(hydration.bytesTotal)
            status["hydratedFiles"] = .number(UInt64(hydration.filesDone))
            status["hydrationTotalFiles"] = .number(UInt64(hydration.filesTotal))
            if let error = hydration.error { status["hydrationError"] = .text(error) }
        }
        return VolumeInfo(name: record.name, mountpoint: record.mountpoint ?? "", createdAt: record.createdAt,
                          status: status)
    }

    private func requireName(_ request: Request) throws(ConvoyError) -> String {
        guard let name = request.name, !name.isEmpty else { throw .invalid("missing Name in the request") }
        return name
    }

    private func route(_ router: Router<BasicRequestContext>, _ method: String,
                       _ handler: @escaping @Sendable (Request) async throws(ConvoyError) -> Reply) {
        let (logger, metrics) = (self.logger, services.metrics)
        router.post(RouterPath(stringLiteral: method)) { request, _ -> Response in
            do throws(ConvoyError) {
                let decoded = try await JSONBody.decode(Request.self, from: request)
                return JSONBody.response(try await handler(decoded), contentType: Self.contentType)
            } catch {
                logger.warning("\(method) failed: \(error.message)")
                metrics.failed(api: "docker", kind: error.kind)
                return JSONBody.response(Reply(err: error.message), contentType: Self.contentType)
            }
        }
    }
}
