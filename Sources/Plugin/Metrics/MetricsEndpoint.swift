import ConvoyCore
import Hummingbird
import Logging

/// `--metrics-address`: where Prometheus scrapes `/metrics`. `HOST:PORT` (TCP; `[::1]:PORT` for IPv6) or
/// `unix:PATH` (a root-only socket, for a node agent that scrapes through it).
public enum MetricsAddress: Sendable, Equatable {
    case tcp(host: String, port: Int)
    case unix(path: String)

    public static let defaultPort = 9476

    public static func parse(_ text: String) throws(ConvoyError) -> MetricsAddress {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard path.hasPrefix("/") else {
                throw ConvoyError.invalid("--metrics-address: '\(text)': give an absolute path after unix:")
            }
            return .unix(path: path)
        }
        guard let colon = text.lastIndex(of: ":") else {
            throw ConvoyError.invalid("""
                --metrics-address: '\(text)' is neither HOST:PORT (e.g. 127.0.0.1:\(defaultPort)) nor unix:PATH
                """)
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            throw ConvoyError.invalid("--metrics-address: '\(text)': give HOST:PORT with a port from 1 to 65535")
        }
        return .tcp(host: host, port: port)
    }

    var bindAddress: BindAddress {
        switch self {
        case .tcp(let host, let port): .hostname(host, port: port)
        case .unix(let path): .unixDomainSocket(path: path)
        }
    }

    var display: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): "unix:" + path
        }
    }
}

/// The HTTP server of `/metrics` (Prometheus' text format 0.0.4).
enum MetricsEndpoint {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    static func application(address: MetricsAddress, gauges: ScrapeGauges, metrics: DaemonMetrics,
                            logger: Logger, onRunning: @escaping @Sendable () async -> Void)
        -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: RequestMetricsMiddleware(api: "metrics", metrics: metrics))
        router.get("/metrics") { _, _ -> Response in
            await gauges.update()
            let body = metrics.exposition()
            return Response(status: .ok, headers: [.contentType: contentType],
                            body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        return Application(
            router: router, configuration: .init(address: address.bindAddress, serverName: nil),
            onServerRunning: { _ in
                logger.info("serving metrics", metadata: ["address": "\(address.display)"])
                await onRunning()
            },
            logger: logger)
    }
}
