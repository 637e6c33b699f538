// Allocations are counted in the build that ships (scripts/test.sh runs the
// allocation guards without -race).

//go:build !race

package tunnel

import (
	"fmt"
	"io"
	"os"
	"testing"
)

// IsTimeout answers every session's end (nil, EOF) without allocating, and
// still finds a timeout wrapped in another error.
func TestIsTimeoutAtASessionsEndAllocatesNothing(t *testing.T) {
	for _, err := range []error{nil, io.EOF} {
		if a := testing.AllocsPerRun(100, func() { IsTimeout(err) }); a != 0 {
			t.Errorf("IsTimeout(%v) allocates %v times, want 0", err, a)
		}
		if IsTimeout(err) {
			t.Errorf("IsTimeout(%v) = true", err)
		}
	}
	if !IsTimeout(fmt.Errorf("read: %w", os.ErrDeadlineExceeded)) {
		t.Error("a wrapped deadline error is not a timeout")
	}
}
