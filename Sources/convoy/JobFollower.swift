import ConvoyClient
import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Follows a daemon job until it ends: a progress bar on a terminal (stderr), or one JSON line per update with
/// `--json`. Interrupting the CLI leaves the job running in the daemon.
struct JobFollower {
    let api: ConvoyAPIClient
    let json: Bool

    func follow(_ started: ClientAPI.Job) throws(ConvoyError) -> ClientAPI.Job {
        let terminal = isatty(2) == 1
        let begin = Date()
        var job = started
        var lastLine = ""
        // Each request waits in the daemon until the job ends, at most `refresh`: the end is seen at once, and
        // progress is redrawn that often.
        let refresh = 0.2
        while true {
            if json {
                let line = Output.jsonLine(job)
                if line != lastLine { print(line); fflush(nil) }
                lastLine = line
            } else if terminal {
                Output.progressBar(job, elapsed: Date().timeIntervalSince(begin))
            }
            if job.state != .running { break }
            let asked = Date()
            job = try api.job(job.id, waitingUpTo: refresh)
            // A daemon that answers at once (one without waiting) is not asked more often than `refresh`.
            let early = refresh - Date().timeIntervalSince(asked)
            if job.state == .running && early > 0.05 { usleep(UInt32(early * 1_000_000)) }
        }
        if terminal && !json { Output.clearProgressLine() }
        switch job.state {
        case .succeeded: return job
        case .failed, .interrupted, .running:
            throw ConvoyError(.driverFailure, job.error ?? "job \(job.id) ended as \(job.state.rawValue)")
        }
    }
}
