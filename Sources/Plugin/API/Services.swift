/// The daemon's services, as the HTTP APIs see them: each route calls one of them, and none calls a route.
struct Services: Sendable {
    let volumes: VolumeService
    let snapshots: SnapshotService
    let catalog: SnapshotCatalog
    let backups: BackupService
    let restores: RestoreService
    let lazy: LazyRestore
    let browser: BackupBrowser
    let jobs: JobManager
}
