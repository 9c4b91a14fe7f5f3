@testable import Drivers
import XCTest

/// The lease an EBS volume's tags hold, and what a host that wants to mount the volume may do about it.
final class EBSLeaseTests: XCTestCase {
    func testTagsRoundTripAndMalformedOnesHoldNoLease() {
        let lease = EBSLease(host: "host-a", instance: "i-1", expires: 1_800_000_000)
        XCTAssertEqual(EBSLease(tags: lease.tags.merging(["Name": "v"]) { $1 }), lease)
        XCTAssertNil(EBSLease(tags: [:]), "never leased, or released")
        XCTAssertNil(EBSLease(tags: ["convoy-lease-host": "host-a"]), "no expiry: held by no host")
        XCTAssertNil(EBSLease(tags: ["convoy-lease-host": "", "convoy-lease-expires": "1800000000"]))
        XCTAssertNil(EBSLease(tags: ["convoy-lease-host": "host-a", "convoy-lease-expires": "soon"]))
        XCTAssertEqual(lease.holder, "host host-a (instance i-1)")
        XCTAssertEqual(lease.expiryText, "2027-01-15T08:00:00Z")
    }

    func testAnotherHostsLiveLeaseIsRefusedAndAnExpiredOneIsDisplaced() {
        let other = EBSLease(host: "host-b", instance: "i-2", expires: 1000)
        XCTAssertEqual(EBSLease.decide(current: nil, host: "host-a", now: 999), .take(displacing: nil))
        XCTAssertEqual(EBSLease.decide(current: other, host: "host-a", now: 999), .refuse(other))
        XCTAssertEqual(EBSLease.decide(current: other, host: "host-a", now: 1000), .take(displacing: other),
                       "expired at its expiry second")
        let mine = EBSLease(host: "host-a", instance: "i-1", expires: 10)
        XCTAssertEqual(EBSLease.decide(current: mine, host: "host-a", now: 5000), .take(displacing: nil),
                       "this host's own lease, live or not, is renewed")
    }
}
