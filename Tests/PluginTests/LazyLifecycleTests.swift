@testable import Plugin
import XCTest

/// The rules of a lazy volume's life, one by one: it finishes only once hydrated, a failure keeps it lazy, and
/// what its last unmount does depends on whether finishing copies data.
final class LazyLifecycleTests: XCTestCase {
    func testHydratingThenHydratedThenFinished() {
        var life = LazyLifecycle()
        XCTAssertEqual(life.state, .hydrating)
        XCTAssertFalse(life.mayFinish)
        XCTAssertFalse(life.finished(), "a hydrating volume must not finish")
        XCTAssertTrue(life.hydrationCompleted())
        XCTAssertEqual(life.state, .complete)
        XCTAssertTrue(life.mayFinish)
        XCTAssertTrue(life.finished())
        XCTAssertTrue(life.isFinished)
        XCTAssertEqual(life.state, .complete, "finished reads complete until the record says the volume is plain")
        XCTAssertFalse(life.mayFinish, "a finished volume is not finished twice")
        XCTAssertFalse(life.finished())
        XCTAssertFalse(life.hydrationCompleted(), "a finished volume does not go back to hydrated")
    }

    /// Once its overlay is gone a volume is finishing: never read through the overlay again, and a failed
    /// attempt to make its directory plain is tried again (and shown), never dropped back to hydrated.
    func testFinishingIsOneWayAndRetriedAfterAFailure() {
        var life = LazyLifecycle()
        life.finishing()
        XCTAssertFalse(life.isFinishing, "a hydrating volume's overlay must not go")
        life.hydrationCompleted()
        life.finishing()
        XCTAssertTrue(life.isFinishing)
        XCTAssertEqual(life.state, .complete)
        life.finishing(failure: "disk full")
        XCTAssertTrue(life.error?.contains("disk full") ?? false, "\(life.error ?? "")")
        XCTAssertTrue(life.mayFinish, "a failed finish is tried again")
        XCTAssertFalse(life.hydrationCompleted())
        life.hydrationFailed("late")
        XCTAssertTrue(life.isFinishing)
        XCTAssertTrue(life.finished())
        XCTAssertNil(life.error)
        life.finishing()
        XCTAssertTrue(life.isFinished, "a finished volume does not go back to finishing")
    }

    func testAFailureKeepsTheVolumeLazyWithItsError() {
        var life = LazyLifecycle()
        life.hydrationFailed("store unreachable")
        XCTAssertEqual(life.state, .failed)
        XCTAssertEqual(life.error, "store unreachable")
        XCTAssertFalse(life.mayFinish)
        XCTAssertFalse(life.hydrationCompleted(), "a failed hydration is retried at the next start, not completed")
        XCTAssertEqual(life.atLastUnmount(finishingCopies: false), .stayLazy)
    }

    func testAFailureAfterHydrationChangesNothing() {
        var life = LazyLifecycle()
        life.hydrationCompleted()
        life.hydrationFailed("late")
        XCTAssertEqual(life.state, .complete)
        XCTAssertNil(life.error)
        life.finished()
        life.hydrationFailed("later")
        XCTAssertTrue(life.isFinished)
    }

    func testLastUnmountFinishesAtOnceOrRightAfterWhenItCopies() {
        var life = LazyLifecycle()
        XCTAssertEqual(life.atLastUnmount(finishingCopies: false), .stayLazy)
        XCTAssertEqual(life.atLastUnmount(finishingCopies: true), .stayLazy)
        life.hydrationCompleted()
        XCTAssertEqual(life.atLastUnmount(finishingCopies: false), .finishNow)
        XCTAssertEqual(life.atLastUnmount(finishingCopies: true), .finishWhenIdle)
        life.finished()
        XCTAssertEqual(life.atLastUnmount(finishingCopies: false), .stayLazy, "nothing is left to finish")
    }
}
