import Foundation

/// `/metrics` as Prometheus reads it: fetched and parsed by prometheus_client's own parser (PyPI), so what the test
/// sees is what a real scraper accepts, not what a regex of ours would.
struct MetricsScrape {
    /// Family name → type ("counter", "gauge", "histogram"); the parser drops a counter's `_total` suffix.
    let types: [String: String]
    /// `name{label="value",...}` (labels sorted) → value.
    let samples: [String: Double]

    static let parser = """
        import json, sys, urllib.request
        from prometheus_client.parser import text_string_to_metric_families
        with urllib.request.urlopen(sys.argv[1], timeout=30) as reply:
            content_type = reply.headers.get("Content-Type", "")
            text = reply.read().decode("utf-8")
        types, samples = {}, {}
        for family in text_string_to_metric_families(text):
            types[family.name] = family.type
            for sample in family.samples:
                labels = ",".join('%s="%s"' % item for item in sorted(sample.labels.items()))
                samples["%s{%s}" % (sample.name, labels)] = sample.value
        print(json.dumps({"types": types, "samples": samples, "contentType": content_type}))
        """

    /// Scrapes `url` (http://HOST:PORT/metrics).
    static func scrape(_ url: String) throws -> MetricsScrape {
        let result = try Command.run("/usr/bin/env", ["python3", "-c", parser, url], timeout: 60)
        guard result.status == 0,
              let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
              let types = object["types"] as? [String: String],
              let samples = object["samples"] as? [String: Double] else {
            throw HarnessError("scraping \(url) failed (\(result.status)): \(result.stderr)")
        }
        guard (object["contentType"] as? String)?.hasPrefix("text/plain; version=0.0.4") == true else {
            throw HarnessError("\(url) answered with content type \(object["contentType"] ?? "none")")
        }
        return MetricsScrape(types: types, samples: samples)
    }

    /// The sample `name` with exactly `labels`; nil when absent.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let text = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ",")
        return samples["\(name){\(text)}"]
    }

    /// `value`, 0 when absent (a counter not yet moved).
    func count(_ name: String, _ labels: [String: String] = [:]) -> Double { value(name, labels) ?? 0 }

    /// A free TCP port on the loopback (bound and released: a daemon binding it next is very likely to get it).
    static func freePort() throws -> Int {
        let result = try Command.run("/usr/bin/env", ["python3", "-c", """
            import socket
            s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
            """])
        guard let port = Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw HarnessError("no free port: \(result.stderr)")
        }
        return port
    }
}
