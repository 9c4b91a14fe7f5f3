@testable import AWS
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The proxy settings curl (and so the URLSession this client replaced) takes from the environment, and a request
/// really sent through a proxy.
final class ProxyTests: XCTestCase {
    private let s3 = URL(string: "https://bucket.s3.eu-west-1.amazonaws.com/")!
    private let plain = URL(string: "http://127.0.0.1:9000/")!

    func testSchemeSpecificVariablesAsCurlReadsThem() {
        let environment = ProxyEnvironment([
            "https_proxy": "http://user:secret@proxy.example:3128", "http_proxy": "proxy.example:8080",
        ])
        XCTAssertEqual(environment.proxy(for: s3),
                       .init(host: "proxy.example", port: 3128, user: "user", password: "secret"))
        XCTAssertEqual(environment.proxy(for: plain),
                       .init(host: "proxy.example", port: 8080, user: nil, password: nil))
        // Upper-case HTTP_PROXY is ignored (a CGI request can set it); HTTPS_PROXY and ALL_PROXY count;
        // port 1080 by default.
        XCTAssertNil(ProxyEnvironment(["HTTP_PROXY": "http://p:1"]).proxy(for: plain))
        XCTAssertEqual(ProxyEnvironment(["HTTPS_PROXY": "http://p"]).proxy(for: s3)?.port, 1080)
        XCTAssertEqual(ProxyEnvironment(["ALL_PROXY": "http://all:9"]).proxy(for: plain)?.host, "all")
        XCTAssertNil(ProxyEnvironment([:]).proxy(for: s3))
        // Only HTTP proxies are spoken; a socks URL is not taken for one.
        XCTAssertNil(ProxyEnvironment(["https_proxy": "socks5://p:1080"]).proxy(for: s3))
    }

    func testNoProxyMatchesNamesDomainSuffixesAndStar() {
        let base = ["https_proxy": "http://p:3128", "http_proxy": "http://p:3128"]
        func proxied(_ noProxy: String, _ url: URL) -> Bool {
            ProxyEnvironment(base.merging(["no_proxy": noProxy]) { $1 }).proxy(for: url) != nil
        }
        XCTAssertFalse(proxied("amazonaws.com", s3))
        XCTAssertFalse(proxied(" localhost, .amazonaws.com", s3))
        XCTAssertFalse(proxied("127.0.0.1", plain))
        XCTAssertFalse(proxied("*", s3))
        XCTAssertTrue(proxied("zonaws.com", s3), "a suffix must match at a dot")
        XCTAssertTrue(proxied("example.com", s3))
        XCTAssertFalse(ProxyEnvironment(base.merging(["NO_PROXY": "amazonaws.com"]) { $1 }).proxy(for: s3) != nil)
    }

    /// A host that cannot resolve is reached through a proxy (a CONNECT tunnel, as AsyncHTTPClient always opens)
    /// that answers with the tunnel and the request it received.
    func testRequestsGoThroughTheProxy() async throws {
        let proxyServer = try PythonServer(handler: #"""
        class Handler(BaseHTTPRequestHandler):
            tunnel = "none"
            def do_CONNECT(self):
                # Opens the tunnel, then serves the tunnelled requests itself on the same connection.
                self.tunnel = self.path
                self.send_response(200, "Connection established")
                self.end_headers()
            def do_GET(self):
                data = ("CONNECT %s; %s %s host=%s"
                        % (self.tunnel, self.command, self.path, self.headers.get("Host"))).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
        """#)
        let port = proxyServer.port
        let target = try XCTUnwrap(URL(string: "http://bucket.convoy-test.invalid/key?x=1"))
        let proxy = try XCTUnwrap(ProxyEnvironment(["http_proxy": "http://127.0.0.1:\(port)"]).proxy(for: target))
        let transport = HTTPTransport(idleTimeout: 5, timeLimit: .seconds(10), maximumConnections: 1, proxy: proxy)
        let response = try await transport.send(HTTPRequest(method: "GET", url: target, headers: [:], body: Data()))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(String(decoding: response.body, as: UTF8.self),
                       "CONNECT bucket.convoy-test.invalid:80; GET /key?x=1 host=bucket.convoy-test.invalid")
        withExtendedLifetime(proxyServer) {}
    }
}
