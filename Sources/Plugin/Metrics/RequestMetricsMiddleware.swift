import Hummingbird

/// Counts and times every request of one API by its route's pattern (`/v1/volumes/{name}`, never the name
/// itself: label values stay bounded). Outermost, so it sees the answer the error middleware made.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let api: String
    let metrics: DaemonMetrics

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            record(request, context, status: response.status.code, since: start)
            return response
        } catch let error as HTTPResponseError {
            record(request, context, status: error.status.code, since: start)
            throw error
        } catch {
            record(request, context, status: 500, since: start)
            throw error
        }
    }

    private func record(_ request: Request, _ context: Context, status: Int, since start: ContinuousClock.Instant) {
        // A path no route matched has no pattern: one label for all of them.
        let endpoint = context.endpointPath ?? "unmatched"
        metrics.request(api: api, endpoint: endpoint, method: request.method.rawValue, status: status,
                        duration: .now - start)
    }
}
