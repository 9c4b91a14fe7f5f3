import ConvoyCore
import Hummingbird
import Logging

/// Client API for snapshots, backups, restores and jobs. Long work answers 202 with the job; the CLI follows it.
struct BackupRoutes {
    let services: Services
    let routes: ClientAPIRoutes

    func register(on router: Router<BasicRequestContext>) {
        let (snapshots, catalog, backups) = (services.snapshots, services.catalog, services.backups)
        let (restores, browser, jobs) = (services.restores, services.browser, services.jobs)
        routes.handle(router, .post, "/v1/snapshots", status: .accepted) { request, _ throws(ConvoyError) in
            let body = try await JSONBody.decode(ClientAPI.CreateSnapshotRequest.self, from: request)
            return try await snapshots.createSnapshot(volume: body.volume, snapshot: body.name)
        }
        routes.handle(router, .get, "/v1/snapshots") { request, _ throws(ConvoyError) in
            try catalog.snapshots(volume: request.uri.queryParameters.get("volume"))
        }
        routes.handle(router, .get, "/v1/snapshots/{name}") { _, name throws(ConvoyError) in
            try catalog.snapshot(name)
        }
        routes.handle(router, .delete, "/v1/snapshots/{name}") { _, name throws(ConvoyError) in
            try await catalog.delete(name)
            return [String: String]()
        }
        routes.handle(router, .post, "/v1/backups", status: .accepted) { request, _ throws(ConvoyError) in
            let body = try await JSONBody.decode(ClientAPI.CreateBackupRequest.self, from: request)
            switch (body.snapshot, body.volume) {
            case (let snapshot?, nil):
                return try await backups.createBackup(snapshot: snapshot, destination: body.destination)
            case (nil, let volume?):
                return try await snapshots.backUpVolume(volume, to: body.destination, backups: backups)
            default:
                throw .invalid("name either a snapshot (Snapshot) or a file volume (Volume) to back up, not both")
            }
        }
        routes.handle(router, .get, "/v1/backups") { request, _ throws(ConvoyError) in
            guard let destination = request.uri.queryParameters.get("dest") else {
                throw .invalid("name a destination: dest=vfs:///path, s3://bucket@region/path or ebs://<region>")
            }
            return try await backups.listBackups(destination: destination,
                                                 volume: request.uri.queryParameters.get("volume"))
        }
        routes.handle(router, .post, "/v1/backups/inspect") { request, _ throws(ConvoyError) in
            let body = try await JSONBody.decode(ClientAPI.BackupURLRequest.self, from: request)
            return try await backups.inspectBackup(body.url)
        }
        routes.handle(router, .post, "/v1/backups/delete") { request, _ throws(ConvoyError) in
            let body = try await JSONBody.decode(ClientAPI.BackupURLRequest.self, from: request)
            return try await backups.deleteBackup(body.url)
        }
        routes.handle(router, .post, "/v1/backups/forget") { request, _ throws(ConvoyError) in
            let body = try await JSONBody.decode(ClientAPI.ForgetRequest.self, from: request)
            return try await backups.forget(body)
        }
        routes.handle(router, .post, "/v1/backups/verify", status: .accepted) { request, _ throws(ConvoyError) in
            let body = try await JSONBody.decode(ClientAPI.BackupURLRequest.self, from: request)
            return try await backups.verifyBackup(body.url)
        }
        routes.handle(router, .post, "/v1/backups/verify-store", status: .accepted) { request, _ throws(ConvoyError) in
            let body = try await JSONBody.decode(ClientAPI.VerifyStoreRequest.self, from: request)
            return try await backups.verifyStore(body)
        }
        routes.handle(router, .post, "/v1/restores", status: .accepted) { request, _ throws(ConvoyError) in
            let body = try await JSONBody.decode(ClientAPI.CreateVolumeRequest.self, from: request)
            guard let url = body.backup else { throw .invalid("a restore needs Backup (a backup URL)") }
            var options = body.options ?? [:]
            if let driver = body.driver { options["driver"] = driver }
            if let size = body.size { options["size"] = size }
            return try await restores.restore(name: body.name, backup: url, options: options, wait: false)
        }
        routes.handle(router, .post, "/v1/backups/mount") { request, _ throws(ConvoyError) in
            let body = try await JSONBody.decode(ClientAPI.BackupMountRequest.self, from: request)
            return try await browser.mount(url: body.url, at: body.path)
        }
        routes.handle(router, .post, "/v1/backups/umount") { request, _ throws(ConvoyError) in
            let body = try await JSONBody.decode(ClientAPI.BackupUnmountRequest.self, from: request)
            try await browser.unmount(body.path)
            return [String: String]()
        }
        routes.handle(router, .get, "/v1/backups/mounts") { _, _ throws(ConvoyError) in
            await browser.list()
        }
        routes.handle(router, .get, "/v1/jobs") { _, _ throws(ConvoyError) in
            await jobs.jobs()
        }
        // `wait=SECONDS` (at most 10) answers as soon as the job ends, or after that long with its progress.
        routes.handle(router, .get, "/v1/jobs/{name}") { request, id throws(ConvoyError) in
            let wait = request.uri.queryParameters.get("wait").flatMap(Double.init).map { min(max($0, 0), 10) } ?? 0
            let job = wait > 0
                ? await jobs.waitForEnd(id, upTo: .milliseconds(Int(wait * 1000)))
                : await jobs.job(id)
            guard let job else {
                throw .notFound("no job \(id): the daemon keeps the last \(jobs.keptJobs) jobs that ended "
                    + "(`convoy job list` shows them)")
            }
            return job
        }
    }
}
