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
        // Short jobs should not wait out a long poll: start at 2 ms and back off to 200 ms.
        var pause: UInt32 = 2_000
        while true {
            if json {
                let line = Output.jsonLine(job)
                if line != lastLine { print(line); fflush(nil) }
                lastLine = line
            } else if terminal {
                Output.progressBar(job, elapsed: Date().timeIntervalSince(begin))
            }
            if job.state != .running { break }
            usleep(pause)
            pause = min(pause * 2, 200_000)
            job = try api.job(job.id)
        }
        if terminal && !json { Output.clearProgressLine() }
        switch job.state {
        case .succeeded: return job
        case .failed, .interrupted, .running:
            throw ConvoyError(.driverFailure, job.error ?? "job \(job.id) ended as \(job.state.rawValue)")
        }
    }
}
