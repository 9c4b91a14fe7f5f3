import ConvoyCore
import Hummingbird

/// Client API for backup policies (`BackupScheduler`): `PUT /v1/policies/{volume}` sets one (Dest, EverySeconds,
/// At, Keep), `GET` lists or shows them with their runs' record, `DELETE` removes one.
struct PolicyRoutes {
    let services: Services
    let routes: ClientAPIRoutes

    func register(on router: Router<BasicRequestContext>) {
        let scheduler = services.scheduler
        routes.handle(router, .put, "/v1/policies/{name}") { request, name throws(ConvoyError) in
            var policy = try await JSONBody.decode(ClientAPI.BackupPolicy.self, from: request)
            policy.volume = name
            return try await scheduler.set(policy)
        }
        routes.handle(router, .get, "/v1/policies") { _, _ throws(ConvoyError) in
            try await scheduler.list()
        }
        routes.handle(router, .get, "/v1/policies/{name}") { _, name throws(ConvoyError) in
            try await scheduler.inspect(name)
        }
        routes.handle(router, .delete, "/v1/policies/{name}") { _, name throws(ConvoyError) in
            try await scheduler.delete(name)
            return [String: String]()
        }
    }
}
