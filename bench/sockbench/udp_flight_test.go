package main

import (
	"testing"
	"time"
)

// flightStep is one event of a udpFlight test: send what the window allows at
// at, or echo sequence number seq at at.
type flightStep struct {
	at   time.Duration
	echo int // -1: expire and fill the window instead
}

func TestUDPFlight(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name                                       string
		window                                     int
		steps                                      []flightStep
		wantSent, wantReceived, wantLost, wantLate int64
		wantTimeouts, wantBad                      int64
		wantOutstanding                            int
	}{
		{"all echoed in order", 2, []flightStep{{0, -1}, {1 * ms, 0}, {1 * ms, 1}, {2 * ms, -1}, {3 * ms, 2}, {3 * ms, 3}},
			4, 4, 0, 0, 0, 0, 0},
		{"an echo out of order frees its place", 3, []flightStep{{0, -1}, {1 * ms, 2}, {1 * ms, -1}, {2 * ms, 0}, {2 * ms, 1}, {2 * ms, -1}},
			6, 3, 3, 0, 0, 0, 3},
		{"a lost head is replaced after the timeout", 2, []flightStep{{0, -1}, {1 * ms, 1}, {1 * ms, -1}, {4 * ms, -1}},
			4, 1, 3, 0, 1, 0, 2},
		{"a late echo counts as received, not in the window", 1, []flightStep{{0, -1}, {10 * ms, -1}, {11 * ms, 0}, {12 * ms, 1}, {12 * ms, -1}},
			3, 2, 1, 1, 1, 0, 1},
		{"repeats and unsent numbers are bad", 2, []flightStep{{0, -1}, {1 * ms, 0}, {1 * ms, 0}, {1 * ms, 7}},
			2, 1, 1, 0, 0, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newUDPFlight(tt.window, 4*ms, 1000)
			want := pattern(32)
			msg := pattern(32)
			for _, s := range tt.steps {
				if s.echo < 0 {
					f.expire(s.at)
					for f.canSend() {
						f.stamp(msg, s.at)
						f.sent()
					}
					continue
				}
				reply := pattern(32)
				f.stamp(reply, 0) // writes a stamp; overwritten below with the number echoed
				putStamp(reply, uint64(s.echo), 0)
				f.echoed(reply, want, s.at, true)
			}
			got := []int64{int64(f.next), f.received, f.lost(), f.late, f.timeouts, f.bad, int64(f.outstanding())}
			exp := []int64{tt.wantSent, tt.wantReceived, tt.wantLost, tt.wantLate, tt.wantTimeouts, tt.wantBad, int64(tt.wantOutstanding)}
			for i, name := range []string{"sent", "received", "lost", "late", "timeouts", "bad", "outstanding"} {
				if got[i] != exp[i] {
					t.Errorf("%s %d, want %d", name, got[i], exp[i])
				}
			}
			if f.received+f.lost() != int64(f.next) {
				t.Errorf("received %d + lost %d != sent %d", f.received, f.lost(), f.next)
			}
		})
	}
}

// putStamp writes a sequence number and send time as udpFlight.stamp does.
func putStamp(b []byte, seq uint64, at time.Duration) {
	for i := range 8 {
		b[i] = byte(seq >> (56 - 8*i))
		b[8+i] = byte(uint64(at) >> (56 - 8*i))
	}
}
