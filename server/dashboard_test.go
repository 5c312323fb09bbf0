package server

import (
	"testing"
)

// DashboardSubscribers counts the open event streams of a classroom over
// every server in the test binary, for the tests in package server_test.
func DashboardSubscribers(classroom string) int {
	n := 0
	brokers.Range(func(_, v any) bool {
		b := v.(*broker)
		b.mu.Lock()
		n += len(b.subs[classroom])
		b.mu.Unlock()
		return true
	})
	return n
}

func TestBrokerFanOutAndUnsubscribe(t *testing.T) {
	t.Parallel()
	b := &broker{subs: map[string]map[*subscriber]struct{}{}}
	a1, end1 := b.subscribe("A")
	a2, end2 := b.subscribe("A")
	other, endOther := b.subscribe("B")
	b.publish("A", dashboardEvent{Learner: "l1", Lesson: "demo/hello", Step: 2, Passed: true})
	for i, sub := range []*subscriber{a1, a2} {
		select {
		case ev := <-sub.ch:
			if ev.Learner != "l1" || ev.Step != 2 || !ev.Passed {
				t.Errorf("subscriber %d got %+v", i, ev)
			}
		default:
			t.Errorf("subscriber %d got nothing", i)
		}
	}
	select {
	case ev := <-other.ch:
		t.Errorf("classroom B got A's event %+v", ev)
	default:
	}
	end1()
	end2()
	if n := b.count(); n != 1 {
		t.Errorf("%d subscriptions after two ended, want 1", n)
	}
	endOther()
	if n := b.count(); n != 0 || len(b.subs) != 0 {
		t.Errorf("%d subscriptions, %d classrooms left, want none", n, len(b.subs))
	}
}

func TestBrokerNeverBlocks(t *testing.T) {
	t.Parallel()
	b := &broker{subs: map[string]map[*subscriber]struct{}{}}
	slow, end := b.subscribe("A")
	defer end()
	for i := range cap(slow.ch) + 10 { // nobody reads: publish must not block
		b.publish("A", dashboardEvent{Step: i + 1})
	}
	if !b.takeDropped(slow) {
		t.Error("a full subscriber was not marked as having lost events")
	}
	if b.takeDropped(slow) {
		t.Error("takeDropped did not clear the mark")
	}
	if len(slow.ch) != cap(slow.ch) {
		t.Errorf("buffer holds %d events, want %d", len(slow.ch), cap(slow.ch))
	}
}
