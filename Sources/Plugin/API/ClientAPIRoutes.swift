import BackupFS
import ConvoyCore
import Hummingbird
import Logging

/// The client API on the client socket (`convoy` CLI). REST-shaped, JSON bodies, errors as `{"Error": ...}` with
/// an HTTP status that matches the error's kind.
struct ClientAPIRoutes {
    static let contentType = "application/json"

    let services: Services
    let general: ClientAPI.Info.General
    let logger: Logger

    func register(on router: Router<BasicRequestContext>) {
        let (volumes, lazy, general) = (services.volumes, services.lazy, self.general)
        handle(router, .get, "/v1/info") { _, _ throws(ConvoyError) in
            var drivers: [String: [String: String]] = [:]
            for (name, driver) in volumes.drivers { drivers[name] = driver.info() }
            return ClientAPI.Info(general: general, drivers: drivers)
        }
        handle(router, .get, "/v1/volumes") { _, _ throws(ConvoyError) in
            try volumes.list().map { Self.volume($0) }
        }
        handle(router, .post, "/v1/volumes") { request, _ throws(ConvoyError) in
            let body = try await JSONBody.decode(ClientAPI.CreateVolumeRequest.self, from: request)
            var options = body.options ?? [:]
            if let driver = body.driver { options["driver"] = driver }
            if let size = body.size { options["size"] = size }
            let name = try ObjectName.validate(body.name ?? ObjectName.generate(prefix: "volume"))
            let policy = try await PolicyOptions.take(from: &options, volume: name).asyncMap {
                policy throws(ConvoyError) in try await services.scheduler.validated(policy)
            }
            let record: VolumeRecord
            if let backup = body.backup {
                guard body.lazy == true else { throw .invalid("a full restore from a backup goes to /v1/restores") }
                record = try await lazy.create(name: name, backup: backup, options: options)
            } else {
                record = try await services.createVolume(name: name, options: options)
            }
            if let policy { _ = try await services.scheduler.set(policy) }
            return Self.volume(record, hydration: await lazy.hydration(of: name))
        }
        handle(router, .get, "/v1/volumes/{name}") { _, name throws(ConvoyError) in
            let record = try volumes.get(name)
            return Self.volume(record, hydration: await lazy.hydration(of: name),
                               status: await services.status(of: record))
        }
        handle(router, .get, "/v1/volumes/{name}/hydration") { _, name throws(ConvoyError) in
            let hydration = await lazy.hydration(of: name)
            // Read after the hydration: a volume that just became plain has its record updated by then.
            let record = try volumes.get(name)
            guard let hydration else {
                if LazyVolumes.isLazy(record) {
                    throw ConvoyError(.unavailable, "lazy volume \(name) is not attached to its backup; "
                        + "see the daemon's log")
                }
                return ClientAPI.Hydration(state: .local, backup: "", bytesDone: 0, bytesTotal: 0, filesDone: 0,
                                           filesTotal: 0, job: nil, error: nil)
            }
            return hydration
        }
        handle(router, .delete, "/v1/volumes/{name}") { _, name throws(ConvoyError) in
            try await volumes.remove(name, fromDocker: false)
            return [String: String]()
        }
        handle(router, .post, "/v1/volumes/{name}/mount") { _, name throws(ConvoyError) in
            ClientAPI.MountResponse(mountPoint: try await volumes.mount(name, referenceID: ClientAPI.cliReferenceID))
        }
        handle(router, .post, "/v1/volumes/{name}/umount") { _, name throws(ConvoyError) in
            try await volumes.unmount(name, referenceID: ClientAPI.cliReferenceID)
            return [String: String]()
        }
    }

    static func volume(_ record: VolumeRecord, hydration: ClientAPI.Hydration? = nil,
                       status: [String: String] = [:]) -> ClientAPI.Volume {
        ClientAPI.Volume(
            name: record.name, driver: record.driver, size: record.size, mountPoint: record.mountpoint ?? "",
            createdTime: record.createdAt, state: record.state.rawValue, references: record.references,
            driverInfo: record.driverInfo, hydration: hydration, status: status.isEmpty ? nil : status)
    }

    static func status(of error: ConvoyError) -> HTTPResponse.Status {
        switch error.kind {
        case .invalidArgument: .badRequest
        case .notFound: .notFound
        case .conflict, .inUse, .exhausted: .conflict
        case .unavailable: .serviceUnavailable
        case .driverFailure, .stateFailure, .internalFailure: .internalServerError
        }
    }

    /// `name` is the `{name}` path parameter, or "" for routes without one.
    func handle<T: Encodable & Sendable>(
        _ router: Router<BasicRequestContext>, _ method: HTTPRequest.Method, _ path: String,
        status: HTTPResponse.Status = .ok,
        _ handler: @escaping @Sendable (Request, String) async throws(ConvoyError) -> T
    ) {
        let (logger, metrics) = (self.logger, services.metrics)
        router.on(RouterPath(stringLiteral: path), method: method) { request, context -> Response in
            do throws(ConvoyError) {
                let name = context.parameters.get("name") ?? ""
                return JSONBody.response(try await handler(request, name), status: status,
                                         contentType: Self.contentType, pretty: true)
            } catch {
                logger.warning("\(method) \(path) failed: \(error.message)")
                metrics.failed(api: "client", kind: error.kind)
                return JSONBody.response(ClientAPI.ErrorBody(error: error.message, kind: error.kind),
                                         status: Self.status(of: error), contentType: Self.contentType, pretty: true)
            }
        }
    }
}
