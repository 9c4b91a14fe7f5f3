import Foundation

/// The HTTP proxy a request should go through, taken from the environment the way curl (and so URLSession on
/// Linux, which this client replaced) reads it: `https_proxy`/`HTTPS_PROXY` for https URLs, `http_proxy` (lower
/// case only: `HTTP_PROXY` can be set by a CGI request) for http ones, `all_proxy`/`ALL_PROXY` for either; none for
/// a host listed in `no_proxy`/`NO_PROXY` (a name, a domain suffix, or `*`).
struct ProxyEnvironment: Sendable {
    struct Proxy: Equatable, Sendable {
        var host: String
        var port: Int
        var user: String?
        var password: String?
    }

    let variables: [String: String]

    init(_ variables: [String: String] = ProcessInfo.processInfo.environment) {
        self.variables = variables
    }

    func proxy(for url: URL) -> Proxy? {
        guard let scheme = url.scheme?.lowercased(), let host = url.host?.lowercased(), !bypasses(host) else {
            return nil
        }
        let names = scheme == "https" ? ["https_proxy", "HTTPS_PROXY"] : scheme == "http" ? ["http_proxy"] : []
        guard let setting = (names + ["all_proxy", "ALL_PROXY"]).lazy.compactMap({ variables[$0] })
                .first(where: { !$0.isEmpty })
        else { return nil }
        // A bare host:port means http://host:port; curl's default proxy port is 1080.
        let text = setting.contains("://") ? setting : "http://" + setting
        guard let components = URLComponents(string: text), components.scheme?.lowercased() == "http",
              let proxyHost = components.host, !proxyHost.isEmpty else { return nil }
        return Proxy(host: proxyHost, port: components.port ?? 1080, user: components.user,
                     password: components.password)
    }

    private func bypasses(_ host: String) -> Bool {
        guard let list = variables["no_proxy"] ?? variables["NO_PROXY"] else { return false }
        for item in list.split(separator: ",") {
            var entry = item.trimmingCharacters(in: .whitespaces).lowercased()
            if entry == "*" { return true }
            if entry.hasPrefix(".") { entry.removeFirst() }
            if entry.isEmpty { continue }
            if host == entry || host.hasSuffix("." + entry) { return true }
        }
        return false
    }
}
