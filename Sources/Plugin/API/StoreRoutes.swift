import ConvoyCore
import Hummingbird

/// Client API for encrypted stores (`StoreKeyService`): init, unlock, and the store's keys.
struct StoreRoutes {
    let services: Services
    let routes: ClientAPIRoutes

    func register(on router: Router<BasicRequestContext>) {
        let keys = StoreKeyService(stores: services.backups.stores)
        routes.handle(router, .post, "/v1/stores/init") { request, _ throws(ConvoyError) in
            try await keys.initialize(try await JSONBody.decode(ClientAPI.StoreKeyRequest.self, from: request))
        }
        routes.handle(router, .post, "/v1/stores/unlock") { request, _ throws(ConvoyError) in
            try await keys.unlock(try await JSONBody.decode(ClientAPI.StoreKeyRequest.self, from: request))
        }
        routes.handle(router, .post, "/v1/stores/keys") { request, _ throws(ConvoyError) in
            try await keys.addKey(try await JSONBody.decode(ClientAPI.StoreKeyRequest.self, from: request))
        }
        routes.handle(router, .get, "/v1/stores/keys") { request, _ throws(ConvoyError) in
            try await keys.keys(try Self.destination(request))
        }
        routes.handle(router, .delete, "/v1/stores/keys/{name}") { request, id throws(ConvoyError) in
            try await keys.removeKey(id, request: ClientAPI.StoreKeyRequest(destination: try Self.destination(request)))
            return [String: String]()
        }
    }

    private static func destination(_ request: Request) throws(ConvoyError) -> String {
        guard let destination = request.uri.queryParameters.get("dest") else {
            throw .invalid("name a store: dest=vfs:///path or s3://bucket@region/path")
        }
        return destination
    }
}
