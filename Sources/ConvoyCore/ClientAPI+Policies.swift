import Foundation

extension ClientAPI {
    /// A volume's backup policy (`PUT /v1/policies/{volume}` sets Dest, EverySeconds, At and Keep; the daemon
    /// answers with the rest): a backup every `everySeconds` (at `at`, HH:MM UTC, and then every interval after
    /// it), then the destination's backups of the volume forgotten by `keep`.
    public struct BackupPolicy: Codable, Sendable, Equatable {
        public var volume: String
        public var destination: String
        public var everySeconds: Double
        /// HH:MM in UTC that the runs fall on; nil: intervals from the policy's creation.
        public var at: String?
        public var keep: RetentionPolicy
        /// Check the destination (`backup verify --all`) after a run when this long has passed since the last
        /// check, reading `verifySubset` of its blocks (5%, 1/10, all; nil: none, references only).
        public var verifyEverySeconds: Double?
        public var verifySubset: String?
        public var createdTime: String?
        public var lastVerify: String?
        /// The last run that succeeded, and the last one tried (a failed or interrupted run is tried again
        /// after `BackupSchedule.retryDelay`).
        public var lastSuccess: String?
        public var lastAttempt: String?
        public var nextRun: String?
        public var running: Bool?
        public var lastJob: String?
        public var lastBackup: String?
        public var lastError: String?

        public init(volume: String, destination: String, everySeconds: Double, at: String? = nil,
                    keep: RetentionPolicy = RetentionPolicy()) {
            (self.volume, self.destination, self.everySeconds, self.at, self.keep) =
                (volume, destination, everySeconds, at, keep)
        }

        enum CodingKeys: String, CodingKey {
            case volume = "Volume", destination = "Dest", everySeconds = "EverySeconds", at = "At", keep = "Keep"
            case createdTime = "CreatedTime", lastSuccess = "LastSuccess", lastAttempt = "LastAttempt"
            case nextRun = "NextRun", running = "Running", lastJob = "LastJob", lastBackup = "LastBackup"
            case lastError = "LastError", verifyEverySeconds = "VerifyEverySeconds", verifySubset = "VerifySubset"
            case lastVerify = "LastVerify"
        }
    }
}
