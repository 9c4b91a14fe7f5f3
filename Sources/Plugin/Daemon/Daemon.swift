import Backupstore
import BackupFS
import CLinux
import ConvoyCore
import Drivers
import Hummingbird
import Logging
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// `convoy daemon`: takes the root's lock, opens the state, builds the drivers, reconciles, then serves the client
/// API and Docker's plugin API until SIGTERM or SIGINT.
public enum Daemon {
    public static func run(_ configuration: DaemonConfiguration, logger: Logger) async throws(ConvoyError) {
        let root = try PathGuard.absoluteDirectory(configuration.root, option: "--root")
        let socketGroup = try configuration.socketGroup.map { group throws(ConvoyError) in
            try SocketFiles.groupID(group)
        } ?? 0
        // Everything the daemon creates is root-only unless it widens it on purpose (volume directories).
        umask(0o077)
        // Blocks are 0.25–4 MiB buffers allocated and freed all the time; glibc would mmap each one and the kernel
        // zero fresh pages for it (a tenth of the CPU of reading a mounted backup). Keep them on the heap, in a
        // few arenas: with glibc's default of one per thread up to 16, each keeping up to the trim threshold of
        // freed memory, a backup then a restore left the daemon at 930 MiB resident (bench/s3-vs-restic.sh). Two
        // arenas that give back free memory beyond 16 MiB: with four keeping up to 64 MiB each, the local backup
        // benchmark peaked at 240–257 MiB for 68 MB of live heap (heaptrack); now 175–189 MiB (bench/RESULTS.md).
        convoy_tune_malloc(64 << 20, 16 << 20, 2)
        try Filesystem.makeDirectory(root, mode: 0o700)
        let lock = try DaemonLock(root: root)
        let store = try StateStore(path: root + "/convoy.db")
        // The machine id and hostname as the store's writer identity read them (an empty machine id: none).
        let machine = WriterIdentity.current
        let host = try HostIdentity.resolve(flag: configuration.hostID, recorded: store.config(HostIdentity.configKey),
                                            machineID: machine.machine, hostname: machine.host)
        if let old = host.replaced {
            logger.warning("""
                host id changes from \(old) to \(host.id) (--host-id): what this host recorded in shared storage \
                as \(old) is no running host's now
                """)
        }
        try store.setConfig(HostIdentity.configKey, host.id)

        let saved = SavedDriverConfiguration.decode(try store.config(SavedDriverConfiguration.key))
        let driverConfiguration = SavedDriverConfiguration.resolve(configuration, saved: saved)
        let metrics = DaemonMetrics()
        let drivers = try DriverRegistry.makeDrivers(
            names: driverConfiguration.drivers, root: root, options: driverConfiguration.options, hostID: host.id,
            logger: logger, leaseEvents: { lease, takeover in metrics.lease(lease, takeover: takeover) })
        for driver in drivers { try await driver.start() }
        try store.setConfig(SavedDriverConfiguration.key, driverConfiguration.encoded())

        // Wired in one step, every call one way: routes → services → VolumeService → hooks (LazyVolumes,
        // SnapshotCatalog) → drivers. docs/design.md, "Modules", draws it.
        let destinations = try BackupDestinations(listed: configuration.backupDestinations,
                                                  allowsAny: configuration.allowAnyBackupDestination, store: store)
        let stores = StoreFactory(s3Endpoint: try StoreFactory.endpoint(option: configuration.s3Endpoint),
                                  s3Concurrency: configuration.s3Concurrency,
                                  destinations: destinations, hostID: host.id,
                                  keyring: StoreKeyring(passwordFiles: configuration.storePasswordFiles),
                                  appendOnly: configuration.appendOnlyDestinations,
                                  packIndexCacheRoot: root + "/cache/pack-indexes")
        let browseTargets = try BrowseTargets(
            roots: configuration.browseRoots ?? BrowseTargets.defaultRoots(daemonRoot: root),
            allowsAny: configuration.allowAnyBrowseTarget)
        logChecks(destinations, browseTargets, store: store, logger: logger)
        // One ceiling for the blocks of every mount (lazy volumes and browse mounts alike).
        let blockMemory = BlockMemory(capacity: Int(clamping: configuration.fuseCacheBytes))
        var mountOptions = BackupMountOptions(
            memory: blockMemory, readAheadBlocks: configuration.fuseReadAheadBlocks,
            diskCacheDirectory: configuration.fuseDiskCache ? root + "/cache/blocks" : nil)
        var browseOptions = mountOptions
        mountOptions.observer = metrics.mounts("lazy")
        browseOptions.observer = metrics.mounts("browse")
        let catalog = try SnapshotCatalog(store: store, root: root, drivers: drivers, logger: logger)
        let handoff = configuration.fuseHandoffSeconds > 0
            ? FuseHandoff(path: root + "/fuse-keeper.sock", orphanTimeout: configuration.fuseHandoffSeconds,
                          logger: logger)
            : nil
        let perVolumeMounts = configuration.metricsPerVolume ? PerVolumeMounts(metrics) : nil
        let lazyVolumes = LazyVolumes(root: root, drivers: drivers, logger: logger, mountOptions: mountOptions,
                                      hydrationPause: configuration.hydrationPause, handoff: handoff,
                                      perVolumeMounts: perVolumeMounts)
        let (sharedCatalogs, sharedHosts) = try await sharedStorage(drivers, host: host.id, metrics: metrics,
                                                                    configuration: configuration, logger: logger)
        let replicator = Replicator(hostID: host.id, stores: stores, logger: logger, metrics: metrics)
        let volumes = VolumeService(store: store, drivers: drivers,
                                    ignoreDockerDelete: configuration.ignoreDockerDelete,
                                    hooks: [lazyVolumes, catalog, replicator], shared: sharedCatalogs,
                                    hostID: host.id, logger: logger, metrics: metrics)
        let jobs = JobManager(store: store, logger: logger, metrics: metrics)
        let planner = RestorePlanner(volumes: volumes)
        let services = Services(
            volumes: volumes,
            snapshots: SnapshotService(volumes: volumes, catalog: catalog, jobs: jobs, lazy: lazyVolumes),
            catalog: catalog,
            backups: BackupService(catalog: catalog, jobs: jobs, stores: stores),
            restores: RestoreService(planner: planner, jobs: jobs, stores: stores, root: root),
            lazy: LazyRestore(volumes: volumes, attached: lazyVolumes, planner: planner, jobs: jobs, stores: stores),
            browser: BackupBrowser(root: root, store: store, stores: stores, logger: logger, options: browseOptions,
                                   targets: browseTargets),
            jobs: jobs, replicator: replicator,
            scheduler: BackupScheduler(store: store, clock: .fromEnvironment(), logger: logger), metrics: metrics)
        await replicator.connect(.init(snapshots: services.snapshots, backups: services.backups, catalog: catalog,
                                       jobs: jobs))
        await services.scheduler.connect(.init(volumes: volumes, snapshots: services.snapshots, catalog: catalog,
                                               backups: services.backups, jobs: jobs))
        let (lazy, browser, scheduler) = (services.lazy, services.browser, services.scheduler)
        for id in try store.interruptRunningJobs(at: JobManager.now()) {
            let message = "reconcile: job \(id) was running when the daemon stopped; "
                + "marked interrupted (run it again)"
            logger.warning("\(message)")
        }
        var repairs = await volumes.reconcile()
        repairs += await browser.cleanUpAfterPreviousRun()
        repairs += await lazy.resumeAll()
        repairs += await replicator.resumeAll((try? volumes.list()) ?? [])
        repairs += await catalog.sweepOrphans(existingVolumes: Set(((try? volumes.list()) ?? []).map(\.name)))
        for repair in repairs { logger.warning("reconcile: \(repair)") }
        logger.info("state reconciled", metadata: ["repairs": "\(repairs.count)",
                                                   "volumes": "\((try? volumes.list().count) ?? 0)"])

        try SocketFiles.prepare(configuration.socket, option: "--socket")
        try SocketFiles.prepare(configuration.pluginSocket, option: "--plugin-socket")
        if let csiSocket = configuration.csiSocket { try SocketFiles.prepare(csiSocket, option: "--csi-socket") }

        let general = ClientAPI.Info.General(
            root: root, driverList: driverConfiguration.drivers, defaultDriver: volumes.defaultDriver,
            ignoreDockerDelete: configuration.ignoreDockerDelete, pluginSocket: configuration.pluginSocket,
            version: ConvoyVersion.current, fuse: LibFuse.summary, hostID: host.id)

        let clientRouter = Router()
        clientRouter.add(middleware: RequestMetricsMiddleware(api: "client", metrics: metrics))
        clientRouter.add(middleware: JSONErrorMiddleware(form: .client))
        let clientRoutes = ClientAPIRoutes(services: services, general: general, logger: logger)
        clientRoutes.register(on: clientRouter)
        BackupRoutes(services: services, routes: clientRoutes).register(on: clientRouter)
        PolicyRoutes(services: services, routes: clientRoutes).register(on: clientRouter)
        StoreRoutes(services: services, routes: clientRoutes).register(on: clientRouter)
        let pluginRouter = Router()
        pluginRouter.add(middleware: RequestMetricsMiddleware(api: "docker", metrics: metrics))
        pluginRouter.add(middleware: JSONErrorMiddleware(form: .plugin))
        DockerVolumeAPI(services: services, logger: logger).register(on: pluginRouter)

        let clientSocket = configuration.socket
        let pluginSocket = configuration.pluginSocket
        // systemd (Type=notify) counts the daemon started once every server accepts connections.
        var servers: Set<String> = ["client", "plugin"]
        if configuration.csiSocket != nil { servers.insert("csi") }
        if configuration.metricsAddress != nil { servers.insert("metrics") }
        let readiness = Readiness(servers: servers, status: "serving \(pluginSocket)", logger: logger)
        let clientApp = Application(
            router: clientRouter,
            configuration: .init(address: .unixDomainSocket(path: clientSocket), serverName: nil),
            onServerRunning: { _ in
                restrictOrStop(clientSocket, mode: 0o660, group: socketGroup, logger: logger)
                await readiness.serving("client")
            },
            logger: logger)
        let pluginApp = Application(
            router: pluginRouter,
            configuration: .init(address: .unixDomainSocket(path: pluginSocket), serverName: nil),
            onServerRunning: { _ in
                restrictOrStop(pluginSocket, mode: 0o600, logger: logger)
                logger.info("serving", metadata: ["client": "\(clientSocket)", "plugin": "\(pluginSocket)",
                                                  "root": "\(root)", "host": "\(host.id)"])
                await readiness.serving("plugin")
            },
            logger: logger)

        var served: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: clientApp),
                                                                         .init(service: pluginApp)]
        if let csiSocket = configuration.csiSocket {
            let identity = CSIIdentity(hostID: host.id, drivers: driverConfiguration.drivers)
            let inFlight = CSIInFlight()
            let controller = CSIController(services: services,
                                           snapshotDestination: configuration.csiSnapshotDestination, hostID: host.id,
                                           inFlight: inFlight, expandOnNode: configuration.csiExpandOnNode)
            let node = CSINode(services: services, hostID: host.id, inFlight: inFlight)
            var server = CSIServer(socket: csiSocket, services: [identity, controller, node], logger: logger)
            server.onListening = { await readiness.serving("csi") }
            served.append(.init(service: server))
        }
        if let address = configuration.metricsAddress {
            if case .unix(let path) = address { try SocketFiles.prepare(path, option: "--metrics-address") }
            let gauges = ScrapeGauges(metrics: metrics, store: store, drivers: driverConfiguration.drivers,
                                      jobs: jobs, lazy: lazyVolumes, browser: browser,
                                      perVolume: perVolumeMounts)
            served.append(.init(service: MetricsEndpoint.application(
                address: address, gauges: gauges, metrics: metrics, logger: logger,
                onRunning: {
                    if case .unix(let path) = address { restrictOrStop(path, mode: 0o600, logger: logger) }
                    await readiness.serving("metrics")
                })))
        }
        let group = ServiceGroup(configuration: .init(
            services: served,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        defer {
            SocketFiles.remove(clientSocket)
            SocketFiles.remove(pluginSocket)
            if let csiSocket = configuration.csiSocket { SocketFiles.remove(csiSocket) }
            if case .unix(let path) = configuration.metricsAddress { SocketFiles.remove(path) }
            withExtendedLifetime(lock) {}
        }
        await scheduler.start()
        do {
            try await group.run()
            readiness.stopping()
        } catch {
            readiness.stopping()
            await scheduler.stop()
            await sharedHosts.stop()
            await browser.unmountAll()
            await lazyVolumes.stopAll()
            throw ConvoyError(.unavailable, "the daemon stopped: \(error)")
        }
        await scheduler.stop()
        // The host lease is left to expire: until then other hosts count this host's mounts (its containers run on).
        await sharedHosts.stop()
        // FUSE mounts are served by this process: they go with it (a restart attaches lazy volumes again).
        await browser.unmountAll()
        await lazyVolumes.stopAll()
        logger.info("stopped; volumes in use stay usable and their references are kept for the next start")
    }

    /// What `--backup-destinations` and `--browse-root` let clients reach, once at start.
    private static func logChecks(_ destinations: BackupDestinations, _ targets: BrowseTargets, store: StateStore,
                                  logger: Logger) {
        if destinations.allowsAny {
            logger.warning("--allow-any-backup-destination: clients may restore from and browse any backup store")
        } else {
            let written = (try? store.writtenDestinations().count) ?? 0
            let listed = destinations.listed.map(DestinationPrefix.display).joined(separator: ", ")
            let allowed = "backup destinations: the \(written) this daemon has written to"
                + (listed.isEmpty ? "; new backups to any" : ", and under \(listed)")
            logger.info("\(allowed)")
        }
        if targets.allowsAny {
            logger.warning("--allow-any-browse-target: clients may mount a backup over any directory")
        } else {
            logger.info("backups are mounted for browsing only under \(targets.roots.joined(separator: ", "))")
        }
    }

    /// The catalogs of drivers whose storage several hosts share, and this host's leases in them (taken now).
    private static func sharedStorage(
        _ drivers: [any VolumeDriver], host: String, metrics: DaemonMetrics, configuration: DaemonConfiguration,
        logger: Logger) async throws(ConvoyError) -> ([String: SharedCatalog], SharedHosts) {
        var catalogs: [String: SharedCatalog] = [:]
        for driver in drivers {
            if let directory = driver.sharedCatalogDirectory {
                catalogs[driver.name] = try SharedCatalog(directory: directory)
            }
        }
        let hosts = SharedHosts(host: host, catalogs: Array(catalogs.values),
                                timeToLive: configuration.hostLeaseSeconds, logger: logger, metrics: metrics)
        try await hosts.start()
        return (catalogs, hosts)
    }

    /// A socket that cannot be restricted to root must not stay open to others: stop at once.
    private static func restrictOrStop(_ path: String, mode: mode_t, group: gid_t = 0, logger: Logger) {
        do {
            try SocketFiles.restrict(path, mode: mode, group: group)
        } catch {
            logger.critical("\(error.message); stopping")
            SocketFiles.remove(path)
            exit(1)
        }
    }
}
