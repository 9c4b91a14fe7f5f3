import ConvoyCore
import Hummingbird

/// What the routers answer outside their routes (an unknown path or method, a request the server itself
/// refuses) in each API's own error form, so that every answer is JSON a client can read: `{"Err": ...}` for
/// Docker's plugin protocol, `{"Error": ..., "Kind": ...}` for the client API. Route handlers answer their own
/// errors already; this catches what reaches no handler.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    enum Form: Sendable {
        case plugin
        case client
    }

    let form: Form

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPResponseError {
            let message = error.status == .notFound
                ? "no such endpoint: \(request.method) \(request.uri.path)"
                : "\(request.method) \(request.uri.path): \(error.status.reasonPhrase)"
            switch form {
            case .plugin:
                return JSONBody.response(DockerVolumeAPI.Reply(err: message), status: error.status,
                                         contentType: DockerVolumeAPI.contentType)
            case .client:
                let kind: ConvoyError.Kind = error.status == .notFound ? .notFound : .invalidArgument
                return JSONBody.response(ClientAPI.ErrorBody(error: message, kind: kind), status: error.status,
                                         contentType: ClientAPIRoutes.contentType, pretty: true)
            }
        }
    }
}
