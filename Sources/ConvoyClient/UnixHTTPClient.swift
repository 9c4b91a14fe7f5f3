import ConvoyCore
#if canImport(Glibc)
import Glibc
#endif

/// A small blocking HTTP/1.1 client over a UNIX socket: what the CLI, the tests and the load generator need to
/// talk to the daemon, without pulling a TLS stack into the binary. One connection, kept alive between requests;
/// responses framed by Content-Length or chunked encoding.
public final class UnixHTTPClient {
    public struct Response: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: [UInt8]

        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    public let socketPath: String
    public let timeoutSeconds: Int
    private var fd: Int32 = -1
    private var buffer: [UInt8] = []

    public init(socketPath: String, timeoutSeconds: Int = 120) {
        self.socketPath = socketPath
        self.timeoutSeconds = timeoutSeconds
    }

    deinit { disconnect() }

    public func disconnect() {
        if fd >= 0 { close(fd) }
        fd = -1
        buffer.removeAll(keepingCapacity: true)
    }

    /// Sends one request and reads its response. Reconnects once if a kept-alive connection was closed.
    public func request(_ method: String, _ path: String, body: [UInt8] = [],
                        headers: [String: String] = [:]) throws(ConvoyError) -> Response {
        let reused = fd >= 0
        do {
            return try exchange(method, path, body: body, headers: headers)
        } catch where reused {
            disconnect()
            return try exchange(method, path, body: body, headers: headers)
        }
    }

    private func exchange(_ method: String, _ path: String, body: [UInt8],
                          headers: [String: String]) throws(ConvoyError) -> Response {
        if fd < 0 { try connectSocket() }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: convoy\r\nContent-Length: \(body.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        try sendAll(Array(head.utf8) + body)
        return try readResponse()
    }

    private func connectSocket() throws(ConvoyError) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ConvoyError(.unavailable, "cannot create a socket: \(errnoText())") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw .invalid("socket path \(socketPath) is too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in pathBytes.enumerated() { raw[index] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw ConvoyError(.unavailable, "cannot reach the convoy daemon at \(socketPath) (\(errnoText(code))); "
                + "is it running? Start it with `convoy daemon`, or pass --socket")
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        self.fd = fd
    }

    private func sendAll(_ bytes: [UInt8]) throws(ConvoyError) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { raw in
                send(fd, raw.baseAddress.map { $0 + offset }, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR { continue }
                throw ConvoyError(.unavailable, "cannot send to \(socketPath): \(errnoText())")
            }
            offset += sent
        }
    }

    /// Reads more bytes into the buffer; throws on EOF or error.
    private func fill() throws(ConvoyError) {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count > 0 {
                buffer.append(contentsOf: chunk[0..<count])
                return
            }
            if count < 0 && errno == EINTR { continue }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                throw ConvoyError(.unavailable, "the daemon at \(socketPath) did not answer within \(timeoutSeconds) s")
            }
            throw ConvoyError(.unavailable, count == 0
                ? "the daemon at \(socketPath) closed the connection"
                : "cannot read from \(socketPath): \(errnoText())")
        }
    }

    private func readLine() throws(ConvoyError) -> String {
        while true {
            if let index = firstCRLF() {
                let line = String(decoding: buffer[0..<index], as: UTF8.self)
                buffer.removeFirst(index + 2)
                return line
            }
            try fill()
        }
    }

    private func firstCRLF() -> Int? {
        guard buffer.count >= 2 else { return nil }
        for index in 0..<(buffer.count - 1) where buffer[index] == 13 && buffer[index + 1] == 10 { return index }
        return nil
    }

    private func readBytes(_ count: Int) throws(ConvoyError) -> [UInt8] {
        while buffer.count < count { try fill() }
        let bytes = Array(buffer[0..<count])
        buffer.removeFirst(count)
        return bytes
    }

    private func readResponse() throws(ConvoyError) -> Response {
        let statusLine = try readLine()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw ConvoyError(.unavailable, "unexpected answer from \(socketPath): \(statusLine.prefix(80))")
        }
        var headers: [String: String] = [:]
        while true {
            let line = try readLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let value = line[line.index(after: colon)...].drop(while: { $0 == " " })
            headers[line[..<colon].lowercased()] = String(value)
        }
        var body: [UInt8] = []
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            while true {
                let sizeLine = try readLine()
                guard let size = Int(sizeLine.split(separator: ";").first.map(String.init) ?? "", radix: 16) else {
                    throw ConvoyError(.unavailable, "bad chunk from \(socketPath)")
                }
                if size == 0 {
                    while try !readLine().isEmpty {}
                    break
                }
                body += try readBytes(size)
                _ = try readLine()
            }
        } else if let length = headers["content-length"].flatMap({ Int($0) }) {
            body = try readBytes(length)
        } else {
            // No framing: the body runs to the end of the connection.
            while true {
                do { try fill() } catch { break }
            }
            body = buffer
            buffer.removeAll()
            disconnect()
        }
        if headers["connection"]?.lowercased() == "close" { disconnect() }
        return Response(status: status, headers: headers, body: body)
    }

    private func errnoText(_ code: Int32 = errno) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }
}
