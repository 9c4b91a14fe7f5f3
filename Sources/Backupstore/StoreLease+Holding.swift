import ConvoyCore
import Foundation
import Synchronization

extension StoreLease {
    /// Writes a lease of `kind`, runs `body` while a timer renews it every `renewEvery` (a quarter of its life),
    /// then stops the timer and releases the lease however `body` ends. A renewal that fails is kept, and given
    /// by `reasonToStop` / `renewalFailure`, so the holder stops before acting on a lease others may think expired.
    static func holding<T>(_ kind: Kind, in repository: BackupRepository, renewEvery: TimeInterval = timeToLive / 4,
                           _ body: (StoreLease) async throws(ConvoyError) -> T) async throws(ConvoyError) -> T {
        let lease = try await write(kind, in: repository)
        let timer = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(renewEvery))
                if Task.isCancelled { break }
                do throws(ConvoyError) { try await lease.renew() } catch { lease.failures.record(error) }
            }
        }
        do {
            let result = try await body(lease)
            timer.cancel()
            await lease.release()
            return result
        } catch {
            timer.cancel()
            await lease.release()
            throw error
        }
    }

    /// For a writer between steps: throws when the timer could not renew the lease (others may think it
    /// expired, and collect blocks this writer counts on), so the writer stops before relying on it.
    func throwIfRenewalFailed() throws(ConvoyError) {
        if let failure = renewalFailure() { throw ConvoyError(.unavailable, failure + "; stopped") }
    }

    /// Why the holder must stop now: a renewal of its lease failed (others may think it expired). Nil otherwise.
    func renewalFailure() -> String? {
        failures.first.map { "the lease on \(repository.store.location) could not be renewed (\($0.message))" }
    }

    /// For a collector, just before it deletes anything: nil when its own lease is still in the store as it
    /// wrote it and no other live lease has appeared; else why it must stop here (its lease was taken over as a
    /// dead writer's, or a backup that started since is waiting for it and may already be looking for blocks).
    /// A stop is no failure: what is left is collected next time.
    func reasonToStop() async throws(ConvoyError) -> String? {
        if let failure = renewalFailure() { return failure }
        let own = try? await repository.store.get(key)
        guard let own, let record = try? JSONDecoder().decode(Record.self, from: Data(own)), record.id == id,
              record.writer == WriterIdentity.current, record.expiresAt > Date().timeIntervalSince1970 else {
            return "the \(kind.rawValue) lease \(id) on \(repository.store.location) is gone or expired (taken over "
                + "as a dead writer's)"
        }
        if let other = try await others().first {
            return "\(other.kind.rawValue) \(other.id) (on \(other.host)) took a lease on \(repository.store.location)"
        }
        return nil
    }
}

/// Renewals that failed on a lease's timer (shared by copies of the lease value).
final class LeaseFailures: Sendable {
    private let errors = Mutex<[ConvoyError]>([])

    func record(_ error: ConvoyError) { errors.withLock { $0.append(error) } }

    var first: ConvoyError? { errors.withLock { $0.first } }
}
