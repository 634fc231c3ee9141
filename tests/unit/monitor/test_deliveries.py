"""Numbered deliveries: every batch once, in order, across a monitor restarted from an older snapshot."""

from raymlops.monitor.deliveries import Deliveries


def test_batches_are_taken_once_and_in_order():
    d = Deliveries()
    assert d.admit("r", 1) == (True, None)
    assert d.admit("r", 1) == (False, None) and d.duplicates == 1  # a resend after a lost reply
    assert d.admit("r", 3) == (False, 2)  # 2 went missing: ask for it
    assert d.admit("r", 2) == (True, None) and d.admit("r", 3) == (True, None)
    assert d.reply("r") == {"durable": 0, "resend_from": None}


def test_a_restart_from_an_older_snapshot_asks_for_what_it_lost():
    d = Deliveries()
    for seq in (1, 2):
        d.admit("r", seq)
    snapshot = d.state()
    d.committed(snapshot)
    d.admit("r", 3)
    d.admit("r", 4)  # taken, not yet in a snapshot: lost when the monitor is killed
    after = Deliveries()
    after.restore(snapshot)
    assert after.admit("r", 5) == (False, 3)
    assert [after.admit("r", seq)[0] for seq in (3, 4, 5)] == [True, True, True]
    assert after.reply("r")["durable"] == 2


def test_batches_the_sender_gave_up_are_not_waited_for():
    d = Deliveries()
    d.admit("r", 1)
    assert d.admit("r", 5, floor=4) == (False, 4)
    assert d.admit("r", 4, floor=4) == (True, None) and d.admit("r", 5, floor=4) == (True, None)


def test_senders_are_bounded():
    d = Deliveries(max_senders=2)
    for sender in "abc":
        d.admit(sender, 1)
    assert list(d.seen) == ["b", "c"]
