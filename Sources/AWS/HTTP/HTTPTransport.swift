import Synchronization
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One HTTP exchange, with the body held in memory.
struct HTTPRequest: Sendable {
    var method: String
    var url: URL
    var headers: [String: String]
    var body: Data
}

struct HTTPResponse: Sendable {
    var status: Int
    var headers: [String: String]  // names lowercased
    var body: Data
    /// How many attempts it took to get this answer (set by the retry loop, for messages).
    var attempts = 1

    func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// Why an exchange produced no HTTP response at all. `retryable`: a new connection may well succeed (refused,
/// reset, timed out); not for TLS failures or cancellation.
struct TransportError: Error, Sendable {
    var description: String
    var retryable: Bool
}

/// URLSession (FoundationNetworking on Linux) rather than AsyncHTTPClient: it needs no second TLS stack to build.
/// One session per client; it pools connections. Two bounds per request: `idleTimeout` (no byte moved for that
/// long; URLSession's own timeout, which a server trickling bytes never trips) and `timeLimit` (the whole exchange).
final class HTTPTransport: Sendable {
    private let session: URLSession
    let idleTimeout: TimeInterval
    let timeLimit: Duration

    init(idleTimeout: TimeInterval, timeLimit: Duration, maximumConnections: Int) {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = idleTimeout
        configuration.httpMaximumConnectionsPerHost = maximumConnections
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        configuration.httpCookieStorage = nil
        configuration.httpShouldSetCookies = false
        session = URLSession(configuration: configuration)
        self.idleTimeout = idleTimeout
        self.timeLimit = timeLimit
    }

    deinit {
        session.invalidateAndCancel()
    }

    /// The exchange, raced against `timeLimit`; the loser is cancelled (URLSession honours task cancellation).
    func send(_ request: HTTPRequest) async throws(TransportError) -> HTTPResponse {
        let limit = timeLimit
        do {
            return try await withThrowingTaskGroup(of: HTTPResponse.self) { group in
                group.addTask { try await self.exchange(request) }
                group.addTask {
                    try await Task.sleep(for: limit)
                    throw TransportError(description: "timed out (no complete answer within \(limit))", retryable: true)
                }
                defer { group.cancelAll() }
                guard let response = try await group.next() else {
                    throw TransportError(description: "no answer", retryable: true)
                }
                return response
            }
        } catch let error as TransportError {
            throw error
        } catch is CancellationError {
            throw TransportError(description: "cancelled", retryable: false)
        } catch {
            throw TransportError(description: "\(error)", retryable: false)
        }
    }

    private func exchange(_ request: HTTPRequest) async throws(TransportError) -> HTTPResponse {
        var urlRequest = URLRequest(url: request.url, cachePolicy: .reloadIgnoringLocalCacheData,
                                    timeoutInterval: idleTimeout)
        urlRequest.httpMethod = request.method
        for (name, value) in request.headers {
            urlRequest.setValue(value, forHTTPHeaderField: name)
        }
        // S3 refuses a PUT without a length; an empty body must still be sent as `Content-Length: 0`.
        if request.method == "PUT" || request.method == "POST" {
            urlRequest.httpBody = request.body
        }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await Self.load(urlRequest, in: session)
        } catch let error as URLError {
            throw TransportError(description: "\(Self.describe(error.code)) (\(error.localizedDescription))",
                                 retryable: Self.isTransient(error.code))
        } catch is CancellationError {
            throw TransportError(description: "cancelled", retryable: false)
        } catch {
            throw TransportError(description: "\(error)", retryable: false)
        }
        guard let http = response as? HTTPURLResponse else {
            throw TransportError(description: "the answer was not HTTP", retryable: false)
        }
        var headers: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            if let name = name as? String, let value = value as? String {
                headers[name.lowercased()] = value
            }
        }
        return HTTPResponse(status: http.statusCode, headers: headers, body: data)
    }

    /// `session.data(for:)` deadlocks on Linux when a task is cancelled while its answer is being delivered: the
    /// cancellation handler runs under the task's status lock and waits for the session's queue, which waits for
    /// that lock to resume the task. Here the request is a plain data task, and cancellation only schedules
    /// `cancel()` on another queue, so no lock is held across the two.
    private static func load(_ request: URLRequest, in session: URLSession) async throws -> (Data, URLResponse) {
        let holder = DataTaskHolder()
        let result: Result<(Data, URLResponse), any Error> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let task = session.dataTask(with: request) { data, response, error in
                    if let error {
                        continuation.resume(returning: .failure(error))
                    } else if let response {
                        continuation.resume(returning: .success((data ?? Data(), response)))
                    } else {
                        continuation.resume(returning: .failure(URLError(.badServerResponse)))
                    }
                }
                holder.start(task)
            }
        } onCancel: {
            holder.cancelSoon()
        }
        return try result.get()
    }

    private static func isTransient(_ code: URLError.Code) -> Bool {
        switch code {
        case .timedOut, .cannotConnectToHost, .networkConnectionLost, .cannotFindHost, .dnsLookupFailed,
             .notConnectedToInternet, .badServerResponse, .resourceUnavailable:
            return true
        default:
            return false
        }
    }

    private static func describe(_ code: URLError.Code) -> String {
        switch code {
        case .timedOut: return "timed out"
        case .cannotConnectToHost: return "connection refused"
        case .cannotFindHost, .dnsLookupFailed: return "host not found"
        case .networkConnectionLost: return "connection lost"
        case .notConnectedToInternet: return "no network"
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate,
             .serverCertificateNotYetValid, .serverCertificateHasUnknownRoot:
            return "TLS failure"
        case .cancelled: return "cancelled"
        default: return "network error \(code.rawValue)"
        }
    }
}

/// The data task of one request, so that cancellation (which may come before the task exists) reaches it.
final class DataTaskHolder: Sendable {
    private let state = Mutex<(task: URLSessionDataTask?, cancelled: Bool)>((nil, false))

    func start(_ task: URLSessionDataTask) {
        let cancelled = state.withLock { state -> Bool in
            state.task = task
            return state.cancelled
        }
        task.resume()
        if cancelled { cancelSoon() }
    }

    /// Cancels on another queue: never under the caller's locks.
    func cancelSoon() {
        let task = state.withLock { state -> URLSessionDataTask? in
            state.cancelled = true
            return state.task
        }
        guard let task else { return }
        DispatchQueue.global().async { task.cancel() }
    }
}
