import Backupstore
import ConvoyCore
import Foundation
import Logging

/// This host's lease in each shared catalog it uses: taken at start, renewed every third of its time to live, so
/// that its mount references count for the other hosts while it runs, and stop counting when it is gone.
public actor SharedHosts {
    public static let defaultTimeToLive: TimeInterval = 30

    let host: String
    let catalogs: [SharedCatalog]
    let timeToLive: TimeInterval
    let logger: Logger
    let metrics: DaemonMetrics?
    private var renewal: Task<Void, Never>?

    public init(host: String, catalogs: [SharedCatalog], timeToLive: TimeInterval, logger: Logger,
                metrics: DaemonMetrics? = nil) {
        self.metrics = metrics
        self.host = host
        self.catalogs = catalogs
        self.timeToLive = timeToLive
        self.logger = logger
    }

    /// Takes this host's lease in every catalog. Refused while another daemon holds a live lease under the same
    /// host id there (two daemons with one id would count each other's references as their own); a lease of this
    /// machine's earlier daemon that certainly died is taken over at once.
    public func start() throws(ConvoyError) {
        for catalog in catalogs {
            let previous = try catalog.hostLease(host)
            if let held = previous, held.isLive(), held.writer != WriterIdentity.current,
               !held.writer.isCertainlyDead {
                let until = Date(timeIntervalSince1970: held.expiresAt).formatted(.iso8601)
                throw ConvoyError(.conflict, "another daemon uses host id \(host) on the shared storage "
                    + "\(catalog.directory) (a process on \(held.writer.host), pid \(held.writer.pid); its lease runs "
                    + "until \(until)); give each daemon its own --host-id")
            }
            try renew(catalog)
            var metadata: Logger.Metadata = ["host": "\(host)", "catalog": "\(catalog.directory)"]
            if let previous, previous.writer != WriterIdentity.current {
                // This host's earlier daemon: expired, or certainly dead on this machine.
                metadata["previous holder"] = "\(previous.writer.host) pid \(previous.writer.pid)"
            }
            logger.info("took the host lease", metadata: metadata)
        }
        guard !catalogs.isEmpty, renewal == nil else { return }
        let period = timeToLive / 3
        renewal = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(period))
                await self?.renewAll()
            }
        }
    }

    public func stop() {
        renewal?.cancel()
        renewal = nil
    }

    private func renewAll() {
        for catalog in catalogs {
            do throws(ConvoyError) { try renew(catalog) } catch {
                logger.error("cannot renew the host lease; other hosts stop counting its mounts when it expires",
                             metadata: ["catalog": "\(catalog.directory)", "error": "\(error.message)"])
            }
        }
    }

    private func renew(_ catalog: SharedCatalog) throws(ConvoyError) {
        try catalog.writeHostLease(SharedCatalog.HostLease(
            host: host, expiresAt: Date().timeIntervalSince1970 + timeToLive, writer: WriterIdentity.current))
        metrics?.lease("host", takeover: false)
    }
}
