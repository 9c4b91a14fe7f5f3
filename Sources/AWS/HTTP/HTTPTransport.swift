import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

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

/// AsyncHTTPClient over SwiftNIO, one client per S3/EC2 client; it pools connections. Two bounds per request:
/// `idleTimeout` (connecting, or no byte read for that long) and `timeLimit` (the whole exchange, which a server
/// trickling bytes would otherwise stretch without end). Retries belong to `RetryingSender`, so the client's own
/// retry of failed connections is off.
final class HTTPTransport: Sendable {
    private let client: HTTPClient
    let idleTimeout: TimeInterval
    let timeLimit: Duration
    /// The largest answer body read into memory: S3's largest single object.
    static let largestBody = 5 << 30

    /// `proxy`: the HTTP proxy for the one host this transport talks to (`ProxyEnvironment`), if any.
    init(idleTimeout: TimeInterval, timeLimit: Duration, maximumConnections: Int,
         proxy: ProxyEnvironment.Proxy? = nil) {
        let idle = TimeAmount.milliseconds(Int64(max(idleTimeout, 0.001) * 1000))
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: idle, read: idle),
            connectionPool: .init(idleTimeout: .seconds(60),
                                  concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, maximumConnections)),
            proxy: proxy.map { proxy in
                let authorization = proxy.user.map {
                    HTTPClient.Authorization.basic(username: $0, password: proxy.password ?? "")
                }
                return .server(host: proxy.host, port: proxy.port, authorization: authorization)
            },
            decompression: .disabled)
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.httpVersion = .http1Only
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.idleTimeout = idleTimeout
        self.timeLimit = timeLimit
    }

    deinit {
        // The client keeps itself alive until its connections are closed.
        client.shutdown { _ in }
    }

    /// The exchange, raced against `timeLimit`; the loser is cancelled (AsyncHTTPClient honours task cancellation).
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
        var outgoing = HTTPClientRequest(url: request.url.absoluteString)
        outgoing.method = HTTPMethod(rawValue: request.method)
        for (name, value) in request.headers {
            outgoing.headers.replaceOrAdd(name: name, value: value)
        }
        // S3 refuses a PUT without a length; an empty body must still be sent as `Content-Length: 0`.
        // Sent from the Data itself, a slice at a time as the connection takes it: a copy of the whole body (an
        // 8 MiB pack) per request in flight was a fifth of a backup's peak memory, and AsyncHTTPClient's own
        // slices of a collection are 4 MiB each.
        if request.method == "PUT" || request.method == "POST" {
            outgoing.body = request.body.count <= BodySlices.sliceSize
                ? .bytes(request.body)
                : .stream(BodySlices(request.body), length: .known(Int64(request.body.count)))
        }
        do {
            // The client's own deadline is only a backstop a second after `send`'s race, which then always ends
            // first and says what the limit was.
            let backstop = TimeAmount.nanoseconds(Self.nanoseconds(timeLimit)) + .seconds(1)
            let response = try await client.execute(outgoing, timeout: backstop)
            let body = try await Self.collect(response)
            var headers: [String: String] = [:]
            for (name, value) in response.headers {
                let key = name.lowercased()
                headers[key] = headers[key].map { $0 + ", " + value } ?? value
            }
            return HTTPResponse(status: Int(response.status.code), headers: headers, body: body)
        } catch let error as TransportError {
            throw error
        } catch {
            throw Self.describe(error)
        }
    }

    /// The answer's body straight into one `Data` (sized from Content-Length when the server gives it, up to what
    /// a pack range needs: a server's header alone must not reserve gigabytes), instead of a buffer copied into a
    /// `Data` at the end: a restore holds many 8 MiB pack ranges in flight.
    private static func collect(_ response: HTTPClientResponse) async throws -> Data {
        var body = Data()
        if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > 0 {
            body.reserveCapacity(min(length, 16 << 20))
        }
        for try await chunk in response.body {
            guard chunk.readableBytes <= largestBody - body.count else {
                throw TransportError(description: "the answer is larger than \(largestBody) bytes", retryable: false)
            }
            body.append(contentsOf: chunk.readableBytesView)
        }
        return body
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// The error in words, and whether another attempt may succeed.
    static func describe(_ error: any Error) -> TransportError {
        if error is CancellationError {
            return TransportError(description: "cancelled", retryable: false)
        }
        if error is NIOSSLError || error is BoringSSLError {
            return TransportError(description: "TLS failure (\(error))", retryable: false)
        }
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout, .readTimeout, .deadlineExceeded, .writeTimeout:
                return TransportError(description: "timed out (\(error))", retryable: true)
            case .remoteConnectionClosed:
                return TransportError(description: "connection lost (\(error))", retryable: true)
            case .cancelled:
                return TransportError(description: "cancelled", retryable: false)
            default:
                return TransportError(description: "HTTP client error (\(error))", retryable: false)
            }
        }
        if error is NIOTooManyBytesError {
            return TransportError(description: "answer larger than \(largestBody) bytes", retryable: false)
        }
        if let error = error as? IOError {
            switch error.errnoCode {
            case ECONNREFUSED: return TransportError(description: "connection refused", retryable: true)
            case ECONNRESET, EPIPE: return TransportError(description: "connection lost", retryable: true)
            default: return TransportError(description: "network error (\(error))", retryable: true)
            }
        }
        if let error = error as? NIOConnectionError {
            // Every address of the host failed; the first refusal or timeout says why.
            let reasons = error.connectionErrors.map { "\($0.error)" }
            let refused = error.connectionErrors.contains { ($0.error as? IOError)?.errnoCode == ECONNREFUSED }
            return TransportError(description: refused
                                      ? "connection refused"
                                      : "cannot connect to \(error.host) (\(reasons.joined(separator: "; ")))",
                                  retryable: true)
        }
        if error is ChannelError {
            return TransportError(description: "connection lost (\(error))", retryable: true)
        }
        if let error = error as? SocketAddressError {
            return TransportError(description: "host not found (\(error))", retryable: true)
        }
        return TransportError(description: "\(error)", retryable: true)
    }
}
