import ConvoyCore

/// Where a lazily restored volume is in its life, and what follows from it:
///
///     hydrating ──done──▶ hydrated ──finish──▶ finishing ──▶ finished (an ordinary volume)
///         └──error──▶ failed (hydration is retried at the next daemon start)
///
/// A volume is finished only once hydrated and unused: when hydration ends on an idle volume, or at its last
/// unmount. From `finishing` on, its overlay is gone and its directory is being made plain (a step that is
/// recorded on disk and resumed at start): it is never mounted through the overlay again, and a finish that
/// failed there is tried again. Pure, so each rule is tested alone; LazyVolumes keeps one per attached volume.
struct LazyLifecycle: Sendable, Equatable {
    enum Phase: Sendable, Equatable {
        case hydrating
        case failed(String)
        case hydrated
        /// The overlay is gone; the directory is being made plain (the error of an attempt that failed).
        case finishing(String?)
        case finished
    }

    /// What to do when the volume's last reference goes.
    enum AtLastUnmount: Sendable, Equatable {
        /// Not hydrated yet: it stays lazy.
        case stayLazy
        /// Finish within the Unmount call (unmounting and tidying only).
        case finishNow
        /// Finishing copies data (a tree kept apart, blocks never written): right after the Unmount call, once
        /// the volume is idle.
        case finishWhenIdle
    }

    private(set) var phase: Phase = .hydrating

    /// Hydration fetched everything. Only a hydrating volume becomes hydrated; false otherwise.
    @discardableResult
    mutating func hydrationCompleted() -> Bool {
        guard phase == .hydrating else { return false }
        phase = .hydrated
        return true
    }

    /// Hydration stopped on an error. A volume already hydrated or finished keeps its phase.
    mutating func hydrationFailed(_ message: String) {
        if case .hydrating = phase { phase = .failed(message) }
    }

    var mayFinish: Bool {
        switch phase {
        case .hydrated, .finishing: true
        case .hydrating, .failed, .finished: false
        }
    }

    /// The overlay is gone for good: the volume is no longer read through it. Only from `mayFinish`.
    mutating func finishing(failure: String? = nil) {
        if mayFinish { phase = .finishing(failure) }
    }

    var isFinishing: Bool {
        if case .finishing = phase { return true }
        return false
    }

    /// The volume is ordinary now. Only a hydrated (or finishing) volume finishes; false otherwise.
    @discardableResult
    mutating func finished() -> Bool {
        guard mayFinish else { return false }
        phase = .finished
        return true
    }

    var isFinished: Bool { phase == .finished }

    /// `finishingCopies`: finishing copies the volume's data rather than only unmounting and tidying.
    func atLastUnmount(finishingCopies: Bool) -> AtLastUnmount {
        guard mayFinish else { return .stayLazy }
        return finishingCopies ? .finishWhenIdle : .finishNow
    }

    /// The state users see (`convoy hydrate`, Docker's Status): a finished volume reads complete until its
    /// record says it is ordinary.
    var state: ClientAPI.Hydration.State {
        switch phase {
        case .hydrating: .hydrating
        case .failed: .failed
        case .hydrated, .finishing, .finished: .complete
        }
    }

    var error: String? {
        switch phase {
        case .failed(let message): message
        case .finishing(let message):
            message.map { "finishing failed (tried again at the next unmount or start): \($0)" }
        case .hydrating, .hydrated, .finished: nil
        }
    }
}
